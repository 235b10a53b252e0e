import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { FedSegError } from '../../core/errors.js';
import { StrategyConfigSchema, type StrategyConfig } from '../../core/federation/strategies/index.js';
import { ARCHITECTURES, type Architecture } from '../../core/model/config.js';
import { runExperiment } from '../../experiment/run-experiment.js';
import { combineReports, ExperimentReportSchema, verdicts, writeExperimentReport } from '../../experiment/report.js';
import type { CliCommand } from '../command.js';
import { intOption, numberOption } from '../options.js';

const usage = `Usage: fedseg experiment [--out DIR] [--models unet,attention-unet] [--seeds 1,2,3] [--strategies fedavg,fedprox,fedavgm]
                         [--sites N] [--cases N] [--held-out N] [--rounds N] [--local-epochs N] [--downsample F]
                         [--base-filters N] [--depth N] [--lr X] [--batch N] [--data-seed S] [--eval-every K] [--json]
                         [--dp-epsilons E,E,... [--dp-clip C] [--dp-delta D]] [--secure-aggregation]
       fedseg experiment --combine DIR,DIR,... --out DIR

Does joining the federation pay off? On one split of synthetic hospitals that differ in scanner contrast,
bias field, noise, slice thickness, tumour size and grade mix, and with the same per-site budget for every
method, trains for each model and seed: a federation per strategy (learning curve per round), each hospital
alone (local-only, scored at every hospital: the cross-site matrix) and centralised (pooled). All of it goes
through the site trainer that \`fedseg site\` and the app run. Writes report.json (with a "comparison" array),
report.html and RESULTS-federated.md under --out; report.json is updated after every model and seed.
--dp-epsilons 8,1 also runs every strategy with client-level DP-FedAvg (docs/PRIVACY.md) at each target epsilon
(at --dp-delta, default 1e-5, over all --rounds): updates clipped to L2 norm --dp-clip (default 1), Gaussian
noise calibrated by the accountant, shown as e.g. "fedavg+dp-eps8".
--secure-aggregation runs every federation under secure aggregation (threshold: half the sites), each site
encoding and masking its update as \`fedseg site\` does; with --dp-epsilons the sites add the noise themselves
(distributed DP). Shown as "fedavg+secagg", "fedavg+secagg+dp-eps8".
--combine DIR,DIR,... merges the reports of runs that differ only in --seeds (e.g. one process per seed) into --out.

Defaults: --out ./experiment-output --models unet,attention-unet --seeds 1,2,3 --strategies fedavg,fedprox,fedavgm
--sites 5 --cases 6 --held-out 2 --rounds 40 --local-epochs 1 --eval-every 10 --downsample 4 --base-filters 8 --depth 3
--lr 0.001 --batch 1 --data-seed 2020: the demo's hospitals and model, trained long enough (40 epochs per case) for
centralised training to level off, so the comparison is between trained models rather than between early
learning speeds. About 15 minutes per model and seed on 2 CPU cores.`;

const STRATEGY_DEFAULTS: Record<string, unknown> = { fedprox: { name: 'fedprox', mu: 0.01 }, fedadam: { name: 'fedadam', eta: 0.01 }, fedavgm: { name: 'fedavgm', eta: 1, beta: 0.7 } };

function list(text: string | undefined, fallback: string): string[] {
  return (text ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
}

const command: CliCommand = {
  summary: 'compares federated, local-only and centralised training over seeds and writes report.html / report.json',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args, allowPositionals: true,
      options: {
        out: { type: 'string' }, models: { type: 'string' }, seeds: { type: 'string' }, strategies: { type: 'string' },
        sites: { type: 'string' }, cases: { type: 'string' }, 'held-out': { type: 'string' }, rounds: { type: 'string' },
        'local-epochs': { type: 'string' }, downsample: { type: 'string' }, 'base-filters': { type: 'string' }, depth: { type: 'string' },
        lr: { type: 'string' }, batch: { type: 'string' }, 'data-seed': { type: 'string' }, 'eval-every': { type: 'string' },
        'dp-epsilons': { type: 'string' }, 'dp-clip': { type: 'string' }, 'dp-delta': { type: 'string' }, 'secure-aggregation': { type: 'boolean' },
        combine: { type: 'string' }, json: { type: 'boolean' },
      },
    });
    if (positionals.length > 0) throw new FedSegError(`unexpected argument "${positionals[0]}"`);
    if (values.combine) return combine(list(values.combine, ''), resolve(values.out ?? './experiment-output'), values.json ?? false);
    const models = list(values.models, 'unet,attention-unet').map((m) => {
      if (!(ARCHITECTURES as readonly string[]).includes(m)) throw new FedSegError(`--models: unknown model "${m}" (${ARCHITECTURES.join(', ')})`, { field: 'models' });
      return m as Architecture;
    });
    const seeds = list(values.seeds, '1,2,3').map((s) => {
      if (!/^\d{1,9}$/.test(s)) throw new FedSegError(`--seeds: "${s}" is not a non-negative integer`, { field: 'seeds' });
      return Number(s);
    });
    const strategies = list(values.strategies, 'fedavg,fedprox,fedavgm').map((name): StrategyConfig => {
      const parsed = StrategyConfigSchema.safeParse(STRATEGY_DEFAULTS[name] ?? { name });
      if (!parsed.success) throw new FedSegError(`--strategies: unknown strategy "${name}"`, { field: 'strategies' });
      return parsed.data;
    });
    const downsample = intOption(values, 'downsample', { min: 1, max: 16, fallback: 4 });
    const depth = intOption(values, 'depth', { min: 2, max: 5, fallback: 3 });
    if (128 % downsample !== 0 || (128 / downsample) % 2 ** (depth - 1) !== 0) {
      throw new FedSegError(`--downsample ${downsample} must divide 128 and leave a window divisible by 2^(depth-1) = ${2 ** (depth - 1)}`, { field: 'downsample' });
    }
    const casesPerSite = intOption(values, 'cases', { min: 3, max: 200, fallback: 6 });
    const heldOut = intOption(values, 'held-out', { min: 1, max: 100, fallback: 2 });
    if (heldOut >= casesPerSite) throw new FedSegError(`--held-out must be fewer than --cases (${casesPerSite}), got "${heldOut}"`, { field: 'held-out' });
    const epsilons = values['dp-epsilons'] === undefined ? [] : list(values['dp-epsilons'], '').map((text) => {
      const epsilon = Number(text);
      if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new FedSegError(`--dp-epsilons: "${text}" is not a positive number`, { field: 'dp-epsilons' });
      return epsilon;
    });
    if (values['dp-epsilons'] !== undefined && epsilons.length === 0) throw new FedSegError('--dp-epsilons needs at least one epsilon, e.g. 8,1', { field: 'dp-epsilons' });
    if (epsilons.length === 0 && (values['dp-clip'] !== undefined || values['dp-delta'] !== undefined)) {
      throw new FedSegError('--dp-clip and --dp-delta only apply with --dp-epsilons', { field: values['dp-clip'] !== undefined ? 'dp-clip' : 'dp-delta' });
    }
    const privacy = epsilons.length === 0 ? undefined : {
      epsilons,
      clip: numberOption(values, 'dp-clip', { check: (n) => n > 0, rule: 'positive', fallback: 1 }),
      delta: numberOption(values, 'dp-delta', { check: (n) => n > 0 && n < 1, rule: 'in (0, 1)', fallback: 1e-5 }),
    };
    const say = (line: string) => (values.json ? process.stderr : process.stdout).write(`[experiment] ${line}\n`);
    const { report, files } = await runExperiment({
      outDir: resolve(values.out ?? './experiment-output'), models, seeds, strategies,
      sites: intOption(values, 'sites', { min: 2, max: 16, fallback: 5 }), casesPerSite, heldOut,
      rounds: intOption(values, 'rounds', { min: 1, max: 200, fallback: 40 }),
      localEpochs: intOption(values, 'local-epochs', { min: 1, max: 100, fallback: 1 }), downsample,
      baseFilters: intOption(values, 'base-filters', { min: 1, max: 64, fallback: 8 }), depth,
      learningRate: numberOption(values, 'lr', { check: (n) => n > 0 && n <= 1, rule: 'in (0, 1]', fallback: 1e-3 }),
      batchSize: intOption(values, 'batch', { min: 1, max: 16, fallback: 1 }),
      dataSeed: intOption(values, 'data-seed', { min: 0, max: 2 ** 31 - 1, fallback: 2020 }),
      evaluateEvery: intOption(values, 'eval-every', { min: 1, max: 200, fallback: 10 }), privacy, secureAggregation: values['secure-aggregation'] ?? false, log: say,
    });
    if (values.json) process.stdout.write(`${JSON.stringify({ ok: true, files, comparison: report.comparison, verdicts: verdicts(report) }, null, 2)}\n`);
    else process.stdout.write(`${verdicts(report).join('\n')}\n${files.join('\n')}\n`);
    return 0;
  },
};

export default command;

/** --combine: one report from runs of the same experiment with different seeds. */
async function combine(dirs: string[], outDir: string, json: boolean): Promise<number> {
  if (dirs.length === 0) throw new FedSegError('--combine needs at least one folder holding a report.json', { field: 'combine' });
  const sources = dirs.map((d) => join(resolve(d), 'report.json'));
  const reports = await Promise.all(sources.map(async (file) => {
    const text = await readFile(file, 'utf8').catch((err: Error) => {
      throw new FedSegError(`cannot read an experiment report (${err.message})`, { file });
    });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new FedSegError(`not JSON (${(err as Error).message})`, { file });
    }
    const parsed = ExperimentReportSchema.safeParse(value);
    if (!parsed.success) throw new FedSegError(`not an experiment report: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}`, { file });
    return parsed.data;
  }));
  await mkdir(outDir, { recursive: true });
  const report = combineReports(reports, sources);
  const files = await writeExperimentReport(outDir, report);
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, files, comparison: report.comparison, verdicts: verdicts(report) }, null, 2)}\n`);
  else process.stdout.write(`${verdicts(report).join('\n')}\n${files.join('\n')}\n`);
  return 0;
}
