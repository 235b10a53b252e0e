/**
 * Server scaling with the number of sites, at the default model size (U-Net 16 filters, depth 5:
 * 5.6 M parameters, 22.6 MB per update): N lightweight sites speak the wire protocol to the real
 * server (its own process, bench/scale-server.ts) over loopback. Each approves at once, answers its
 * weights by uploading a ready-made update (no training) and evaluates with fixed metrics, so the server
 * sees N updates arrive together, its worst case. Reported per configuration: round time, server
 * peak RSS, server CPU per update (round 2, when the weights to train on are named by hash, so
 * the training phase is pure intake; aggregation separately), event-loop lag, MB in and out.
 *
 * Full mode: FedAvg at N = 5, 20, 50, 100 and coordinate-wise median at N = 20, two rounds each.
 * Quick: N = 5 for both. FEDSEG_BENCH_SCALE="fedavg:5,50,100;median:20" chooses other runs.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  decodeFrame, decodeJson, encodeFrame, MAX_FRAME_BYTES, PROTOCOL_VERSION, ServerMessageSchema, type SiteMessage,
} from '../core/federation/protocol.js';
import { makeModelConfig, type ModelConfig } from '../core/model/config.js';
import { initialWeights } from '../core/model/init.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { architectureHash, encodeModel } from '../core/weights/index.js';
import { COLUMN_BUDGET_BYTES } from '../server/update-spool.js';
import { uploadFrame } from '../site/update-upload.js';
import type { ScaleRoundReport, ScaleServerMessage, ScaleServerOptions } from './scale-server.js';

const ROUNDS = 2;
/** Distinct update payloads the sites share (the server cannot tell; it validates each as sent). */
const VARIANTS = 4;
const RUN_TIMEOUT_MS = 20 * 60 * 1000;
/** The measured server process: compiled .js under `fedseg bench`, the .ts source under tsx in development. */
const SERVER_MODULE = new URL('./scale-server.js', import.meta.url);

interface Run { strategy: 'fedavg' | 'median'; sites: number }

export interface ScaleRow {
  strategy: string;
  sites: number;
  parameters: number;
  frameCapMB: number;
  roundSeconds: number[];
  serverPeakRssMB: number;
  serverStartRssMB: number;
  /** The highest RSS the server's 20 ms sampler saw, with its V8 heap and Buffer memory and when. */
  serverSampledPeak: Extract<ScaleServerMessage, { type: 'done' }>['sampledPeak'];
  /** Round 2: training-phase CPU / N (update intake only; the weights are named by hash). */
  intakeCpuMsPerUpdate: number;
  /** The part of it on the event-loop thread (the rest: update inspector threads, libuv's file writes). */
  intakeLoopCpuMsPerUpdate: number;
  /** Round 2: aggregation CPU / N. */
  aggregationCpuMsPerUpdate: number;
  /** Round 2: all server CPU of the round / N (intake, aggregation, checkpoint, sending the new model). */
  roundCpuMsPerUpdate: number;
  lagMaxMs: number;
  mbInPerRound: number[];
  mbOutPerRound: number[];
  rounds: ScaleRoundReport[];
}

function runsToDo(quick: boolean): Run[] {
  const spec = process.env.FEDSEG_BENCH_SCALE ?? (quick ? 'fedavg:5;median:5' : 'fedavg:5,20,50,100;median:20');
  return spec.split(';').flatMap((part) => {
    const [strategy, list] = part.split(':');
    if ((strategy !== 'fedavg' && strategy !== 'median') || !list) throw new Error(`FEDSEG_BENCH_SCALE part "${part}" is not fedavg:N,... or median:N,...`);
    return list.split(',').map((n) => ({ strategy, sites: Number.parseInt(n, 10) }));
  });
}

/** Update payloads: the initial global model plus small deterministic offsets, one per variant. */
function updatePayloads(config: ModelConfig): Uint8Array[] {
  const global = initialWeights(config, 1);
  return Array.from({ length: VARIANTS }, (_, v) => encodeModel(config, global.map((t) => ({
    ...t, data: t.data.map((x, i) => x + 1e-3 * ((((i * 7 + v * 13) % 11) - 5) / 5)),
  }))));
}

/** One site: approve, upload the update for the weights it is given, evaluate every new model. */
function benchSite(url: string, token: string, updateFrame: (round: number, attempt: number) => Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES, generateMask: (mask) => void mask.fill(0) });
    const send = (m: SiteMessage) => ws.send(JSON.stringify(m));
    let attempt = 1;
    let ticket = '';
    const upload = (round: number) => uploadFrame({ wsUrl: url, ticket, live: () => ws.readyState === WebSocket.OPEN }, updateFrame(round, attempt)).catch(reject);
    ws.on('open', () => send({ type: 'hello', protocol: PROTOCOL_VERSION, token, cases: { train: 10, validation: 2 } }));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const { header } = decodeFrame(data);
        if (header.kind !== 'global') return;
        if (header.purpose === 'train') void upload(header.round);
        else send({ type: 'evaluation', round: header.round, numCases: 2, metrics: { dice_WT: 0.5, dice_TC: 0.4, dice_ET: 0.3 } });
        return;
      }
      const m = decodeJson(ServerMessageSchema, data.toString('utf8'));
      if (m.type === 'welcome') {
        ticket = m.uploadTicket;
      } else if (m.type === 'announce') {
        attempt = m.attempt;
        send({ type: 'approve', round: m.round, attempt: m.attempt });
      } else if (m.type === 'train-cached') {
        void upload(m.round);
      } else if (m.type === 'ping') {
        send({ type: 'pong', t: m.t });
      } else if (m.type === 'update-rejected' || m.type === 'auth-failed') {
        reject(new Error(`site refused: ${m.reason}`));
      } else if (m.type === 'done') {
        ws.close(1000);
      }
    });
    ws.on('close', () => resolve());
    ws.on('error', reject);
  });
}

async function runOne(run: Run, config: ModelConfig, payloads: Uint8Array[]): Promise<ScaleRow> {
  const dir = mkdtempSync(join(tmpdir(), 'fedseg-bench-scale-'));
  const options: ScaleServerOptions = { dir, sites: run.sites, strategy: run.strategy, rounds: ROUNDS, model: {} };
  const child = spawn(process.execPath, nodeArgs(SERVER_MODULE, [JSON.stringify(options)]), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  try {
    const messages: ScaleServerMessage[] = [];
    let wake: (() => void) | null = null;
    child.on('message', (m: ScaleServerMessage) => {
      messages.push(m);
      wake?.();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
      resolve(code);
      wake?.();
    }));
    const next = async <T extends ScaleServerMessage['type']>(type: T): Promise<Extract<ScaleServerMessage, { type: T }>> => {
      for (;;) {
        const found = messages.find((m) => m.type === type);
        if (found) return found as Extract<ScaleServerMessage, { type: T }>;
        if (child.exitCode !== null) throw new Error(`scale server exited with code ${child.exitCode} before "${type}"`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    const ready = await next('ready');
    const hash = architectureHash(config);
    const frames = new Map<string, Buffer>();
    let sent = 0;
    const updateFrame = (round: number, attempt: number) => {
      const key = `${round}/${attempt}`;
      const variant = sent++ % VARIANTS;
      const id = `${key}/${variant}`;
      let frame = frames.get(id);
      if (!frame) {
        for (const k of frames.keys()) if (!k.startsWith(`${key}/`)) frames.delete(k);
        frame = encodeFrame({ kind: 'update', round, attempt, architectureHash: hash, numCases: 10, metrics: { loss: 0.5 }, trainingSeconds: 1 }, payloads[variant]);
        frames.set(id, frame);
      }
      return frame;
    };
    await Promise.all(ready.tokens.map((token) => benchSite(ready.wsUrl, token, updateFrame)));
    const done = await next('done');
    await exited;
    if (done.state !== 'finished' || done.rounds.length !== ROUNDS) throw new Error(`scale run ${run.strategy} N=${run.sites} ended ${done.state} after ${done.rounds.length} rounds`);
    const steady = done.rounds[ROUNDS - 1];
    const perUpdate = (seconds: number) => (1000 * seconds) / run.sites;
    const cpu = steady.cpuSeconds;
    return {
      strategy: run.strategy, sites: run.sites, parameters: ready.parameters, frameCapMB: ready.frameCap / 1e6,
      roundSeconds: done.rounds.map((r) => r.seconds), serverPeakRssMB: done.peakRssMB, serverStartRssMB: done.startRssMB, serverSampledPeak: done.sampledPeak,
      intakeCpuMsPerUpdate: perUpdate(cpu.training), intakeLoopCpuMsPerUpdate: perUpdate(steady.loopCpuSeconds.training), aggregationCpuMsPerUpdate: perUpdate(cpu.aggregating),
      roundCpuMsPerUpdate: perUpdate(cpu.approval + cpu.training + cpu.aggregating + cpu.between),
      lagMaxMs: Math.max(...done.rounds.map((r) => r.lagMaxMs)),
      mbInPerRound: done.rounds.map((r) => r.mbIn), mbOutPerRound: done.rounds.map((r) => r.mbOut), rounds: done.rounds,
    };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Uploads the floor measurement times. */
const FLOOR_UPLOADS = 20;

export interface IntakeFloor {
  /** CPU of a bare Node HTTP server that only counts the bytes of one update's PUT over loopback. */
  receiveCpuMs: number;
  /** CPU of SHA-256 over one update frame. */
  sha256CpuMs: number;
}

/**
 * What taking in one update costs before any FedSeg code runs, on this machine: a bare Node HTTP
 * server in a child process receives the frame FLOOR_UPLOADS times from this process and reports its
 * own CPU, and the frame is hashed as many times here. The server's intake can approach
 * receive + SHA-256, not go below it.
 */
async function intakeFloor(frame: Uint8Array): Promise<IntakeFloor> {
  const server = `const http = require('node:http'); let left = ${FLOOR_UPLOADS + 1}; let start;
    const s = http.createServer((req, res) => { req.on('data', () => {}); req.on('end', () => { res.end(); if (left-- === ${FLOOR_UPLOADS + 1}) start = process.cpuUsage(); if (left === 0) { const u = process.cpuUsage(start); process.stdout.write(JSON.stringify(u)); process.exit(0); } }); });
    s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  try {
    while (!out.includes('\n')) {
      if (child.exitCode !== null) throw new Error(`the floor's HTTP server exited with code ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const port = Number(out.slice(0, out.indexOf('\n')));
    // One warm-up upload first: the server's first request pays for compiling its HTTP path.
    for (let k = 0; k <= FLOOR_UPLOADS; k++) {
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method: 'PUT', headers: { 'content-length': frame.byteLength } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end(frame);
      });
    }
    await new Promise((resolve) => child.on('exit', resolve));
    const received = JSON.parse(out.slice(out.indexOf('\n') + 1)) as NodeJS.CpuUsage;
    const hashStart = process.cpuUsage();
    for (let k = 0; k < FLOOR_UPLOADS; k++) createHash('sha256').update(frame).digest();
    const hashed = process.cpuUsage(hashStart);
    const ms = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000 / FLOOR_UPLOADS;
    return { receiveCpuMs: ms(received), sha256CpuMs: ms(hashed) };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Least-squares line y = a + b x. */
function fitLine(points: Array<[number, number]>): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
  return { a: my - b * mx, b };
}

export async function runScaleBench(options: { quick?: boolean } = {}) {
  const config = makeModelConfig();
  const payloads = updatePayloads(config);
  const floor = await intakeFloor(encodeFrame({ kind: 'update', round: 1, attempt: 1, architectureHash: architectureHash(config), numCases: 10, metrics: { loss: 0.5 }, trainingSeconds: 1 }, payloads[0]));
  const rows: ScaleRow[] = [];
  for (const run of runsToDo(options.quick ?? false)) {
    process.stderr.write(`bench scale: ${run.strategy} with ${run.sites} sites ...\n`);
    rows.push(await runOne(run, config, payloads));
  }
  const f = (x: number, digits = 0) => x.toFixed(digits);
  const header = ['strategy', 'N', 'round s (r1, r2)', 'peak RSS MB', 'intake ms/upd', 'on loop', 'aggr ms/upd', 'round ms/upd', 'lag max ms', 'MB in/round', 'MB out (r1, r2)'];
  const body = rows.map((r) => [
    r.strategy, String(r.sites), r.roundSeconds.map((s) => f(s, 1)).join(', '), f(r.serverPeakRssMB), f(r.intakeCpuMsPerUpdate, 1), f(r.intakeLoopCpuMsPerUpdate, 1), f(r.aggregationCpuMsPerUpdate, 1),
    f(r.roundCpuMsPerUpdate, 1), f(r.lagMaxMs), f(r.mbInPerRound[ROUNDS - 1]), r.mbOutPerRound.map((m) => f(m)).join(', '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const fedavg = rows.filter((r) => r.strategy === 'fedavg');
  const rss = fedavg.length >= 2 ? fitLine(fedavg.map((r) => [r.sites, r.serverPeakRssMB])) : null;
  // Round 2's server CPU against N: the slope is what one more update costs, the intercept the round's fixed work.
  const cpu = fedavg.length >= 2 ? fitLine(fedavg.map((r) => [r.sites, (r.roundCpuMsPerUpdate * r.sites) / 1000])) : null;
  const smallest = fedavg.reduce<ScaleRow | null>((m, r) => (m === null || r.sites < m.sites ? r : m), null);
  const largest = fedavg.reduce<ScaleRow | null>((m, r) => (m === null || r.sites > m.sites ? r : m), null);
  const notes = [
    `model: ${rows[0]?.parameters.toLocaleString('en-US')} parameters, frame cap ${f(rows[0]?.frameCapMB ?? 0, 1)} MB; ${ROUNDS} rounds; all N updates sent at once`,
    ...(rss ? [`FedAvg peak RSS ~ ${f(rss.a)} MB + ${f(rss.b, 2)} MB x N`] : []),
    ...(cpu ? [`FedAvg server CPU per round (round 2) ~ ${f(cpu.a, 2)} s + ${f(1000 * cpu.b, 1)} ms x N`] : []),
    ...(smallest && largest && smallest !== largest ? [`FedAvg peak RSS N=${largest.sites} / N=${smallest.sites}: ${(largest.serverPeakRssMB / smallest.serverPeakRssMB).toFixed(2)}x`] : []),
    `intake floor on this machine: a bare Node HTTP server receiving one update ${f(floor.receiveCpuMs, 1)} ms CPU + SHA-256 of it ${f(floor.sha256CpuMs, 1)} ms`,
    ...rows.map((r) => `${r.strategy} N=${r.sites}: longest event-loop stall per round ${r.rounds.map((x) => `${f(x.lagMaxMs)} ms (${x.longestStall.from}${x.longestStall.to === x.longestStall.from ? '' : ` -> ${x.longestStall.to}`})`).join(', ')}`),
    ...rows.filter((r) => r.strategy === 'median').map((r) => `median N=${r.sites}: blocks of ${Math.floor(COLUMN_BUDGET_BYTES / (4 * r.sites)).toLocaleString('en-US')} parameters per update (${COLUMN_BUDGET_BYTES / 2 ** 20} MiB for all ${r.sites})`),
  ];
  const table = [line(header), ...body.map(line), ...notes].join('\n');
  return { table, json: { name: 'scale', rounds: ROUNDS, rows, peakRssFit: rss, roundCpuFit: cpu, intakeFloor: floor } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { table, json } = await runScaleBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${table}\n${JSON.stringify(json)}\n`);
}
