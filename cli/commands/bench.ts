import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { errorMessage, FedSegError } from '../../core/errors.js';
import { BACKEND_PREFERENCES } from '../../core/tf/backend.js';
import { nodeArgs, ownModuleFile } from '../../core/runtime/own-module.js';
import type { CliCommand } from '../command.js';
import { choiceOption } from '../options.js';

/** Benchmarks, each a module bench/<name>, written by the owner of the code it measures. */
const BENCHES = {
  io: 'NIfTI read/write and preprocessing throughput',
  conv: 'conv3d kernels: ms and effective GFLOP/s per backend',
  model: 'U-Net training step, full-case inference, peak memory',
  train: 'native conv training step against the PyTorch reference',
  step: 'where the 128^3 training step spends its time: kernel-by-kernel profile, CPU seconds, peak RSS',
  infer: 'full-case inference with the default U-Net at 128^3 windows: the cropped case and the whole 240x240x155 grid, s per window, CPU, peak RSS',
  aggregation: 'FedAvg over 5 full-size updates, bytes on the wire per round',
  secagg: 'secure aggregation overhead per round at P = 5.6 M: CPU per site, server CPU, bytes per site, 5 and 50 sites',
  metrics: 'BraTS metrics (Dice, HD95 via EDT) on the full 240x240x155 grid',
  scale: 'server memory, CPU and round time with N sites over loopback (full: N = 5..100, about 10 min)',
  viewer: 'desktop viewer in Chromium (software WebGL): case open and slice step, app JS vs SwiftShader CPU (development checkouts: it drives the test harness, so the compiled build leaves it out; run node --import tsx bench/viewer.ts)',
} as const;
type BenchName = keyof typeof BENCHES;
const NAMES = Object.keys(BENCHES) as BenchName[];

const usage = `Usage: fedseg bench [${NAMES.join('|')}|all] [--quick] [--json] [--backend NAME]

Runs benchmarks, each in its own process (so one crash or memory peak does not affect the
others), prints each one's table, then one combined JSON line (--json: only the JSON).
With no name: every benchmark in quick mode (a few minutes). "all" or a name: full mode
unless --quick. A benchmark whose module is not in this build is reported as "not available".
--backend ${BACKEND_PREFERENCES.join('|')} sets FEDSEG_BACKEND for the benchmarks (e.g.
\`fedseg bench train --backend webgpu\` times the training step on the GPU through WebGPU).
${NAMES.map((n) => `  ${n.padEnd(12)} ${BENCHES[n]}`).join('\n')}`;

/** What a benchmark function may return: a printable table plus JSON, or any JSON value. */
interface BenchOutcome { table?: string; json: unknown }

type BenchReport =
  | { name: BenchName; status: 'ok'; seconds: number; table?: string; result: unknown }
  | { name: BenchName; status: 'not available' | 'failed'; reason: string };

/** The module of benchmark `name` (bench/<name>.ts, compiled to dist/bench/<name>.js). */
function benchModule(name: BenchName): URL {
  return new URL(`../../bench/${name}.js`, import.meta.url);
}

const CLI_ENTRY = new URL('../entry.js', import.meta.url);

const command: CliCommand = {
  summary: 'runs the benchmarks (io, conv, model, train, step, infer, aggregation, secagg, metrics, scale, viewer) and prints tables + JSON',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        backend: { type: 'string' },
        'worker-result': { type: 'string' },
      },
    });
    if (positionals.length > 1) throw new FedSegError(`expected at most one benchmark name, got ${positionals.join(' ')}`);
    const target = positionals[0];
    if (target !== undefined && target !== 'all' && !(NAMES as string[]).includes(target)) {
      throw new FedSegError(`unknown benchmark "${target}"; choose one of ${NAMES.join(', ')}, all`);
    }
    const quick = values.quick || target === undefined;
    const backend = choiceOption(values, 'backend', BACKEND_PREFERENCES);
    if (values['worker-result']) {
      await runInThisProcess(target as BenchName, quick, values['worker-result']);
      return 0;
    }
    const names = target === undefined || target === 'all' ? NAMES : [target as BenchName];
    const reports: BenchReport[] = [];
    for (const name of names) {
      const report = await runInChild(name, quick, values.json, backend);
      reports.push(report);
      if (!values.json) process.stdout.write(`${describe(report)}\n\n`);
    }
    const combined = {
      ok: reports.every((r) => r.status !== 'failed'),
      mode: quick ? 'quick' : 'full',
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      // Tables are for people; the JSON carries each benchmark's numbers only.
      benches: reports.map((r) => (r.status === 'ok' ? { name: r.name, status: r.status, seconds: r.seconds, result: r.result } : r)),
    };
    process.stdout.write(values.json ? `${JSON.stringify(combined, null, 2)}\n` : `${JSON.stringify(combined)}\n`);
    return combined.ok ? 0 : 1;
  },
};

export default command;

function describe(report: BenchReport): string {
  const title = `== bench ${report.name}: ${BENCHES[report.name]}`;
  if (report.status !== 'ok') return `${title}\n${report.status}: ${report.reason}`;
  return `${title} (${report.seconds.toFixed(1)} s)\n${report.table ?? JSON.stringify(report.result, null, 2)}`;
}

/** Child side: imports bench/<name>, runs its exported function, writes the outcome as JSON. */
async function runInThisProcess(name: BenchName, quick: boolean, resultFile: string): Promise<void> {
  const file = ownModuleFile(benchModule(name));
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const fn = pickBenchFunction(module, name);
  if (!fn) throw new FedSegError(`bench/${name} exports no benchmark function`, { file });
  const started = performance.now();
  const returned = await fn({ quick });
  const seconds = (performance.now() - started) / 1000;
  writeFileSync(resultFile, JSON.stringify({ seconds, outcome: normalise(returned) }));
}

/** Owners name their entry point freely: default export, `run`, `bench`, `run<Name>Bench`, or the only function. */
function pickBenchFunction(module: Record<string, unknown>, name: string): ((o: { quick: boolean }) => unknown) | undefined {
  const functions = Object.entries(module).filter(([, v]) => typeof v === 'function') as Array<[string, (o: { quick: boolean }) => unknown]>;
  const preferred = ['default', 'run', 'bench', `run${capitalise(name)}Bench`, `bench${capitalise(name)}`];
  for (const key of preferred) {
    const hit = functions.find(([k]) => k === key);
    if (hit) return hit[1];
  }
  const benchLike = functions.filter(([k]) => /bench/i.test(k));
  if (benchLike.length === 1) return benchLike[0][1];
  return functions.length === 1 ? functions[0][1] : undefined;
}

function normalise(returned: unknown): BenchOutcome {
  if (typeof returned === 'string') return { table: returned, json: null };
  if (returned && typeof returned === 'object' && typeof (returned as { table?: unknown }).table === 'string') {
    const { table, ...rest } = returned as { table: string; json?: unknown };
    return { table, json: 'json' in rest ? rest.json : rest };
  }
  return { json: returned ?? null };
}

async function runInChild(name: BenchName, quick: boolean, json: boolean, backend: string | undefined): Promise<BenchReport> {
  if (!existsSync(ownModuleFile(benchModule(name)))) return { name, status: 'not available', reason: `bench/${name} is not in this build` };
  const dir = mkdtempSync(join(tmpdir(), `fedseg-bench-${name}-`));
  const resultFile = join(dir, 'result.json');
  try {
    const args = nodeArgs(CLI_ENTRY, ['bench', name, '--worker-result', resultFile, ...(quick ? ['--quick'] : [])]);
    // In --json mode the benchmark's own prints go to stderr so stdout stays one JSON document.
    const env = backend === undefined ? process.env : { ...process.env, FEDSEG_BACKEND: backend };
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', json ? process.stderr : 'inherit', 'inherit'] });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0 || !existsSync(resultFile)) return { name, status: 'failed', reason: `benchmark process exited with code ${code}` };
    const { seconds, outcome } = JSON.parse(readFileSync(resultFile, 'utf8')) as { seconds: number; outcome: BenchOutcome };
    return { name, status: 'ok', seconds, table: outcome.table, result: outcome.json };
  } catch (err) {
    return { name, status: 'failed', reason: errorMessage(err) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
