/**
 * Runs one federation on loopback, every party its own Node process: the aggregation server
 * (demo/server-worker.ts: server/ with SQLite and checkpoints under `<out>/server`) and one process
 * per site (demo/site-worker.ts driving the shared site runtime). Collects per-round results from
 * the server's events: who returned, round time, and each site's evaluation of the new global model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FedSegError } from '../core/errors.js';
import { regionMetricKey, type Region } from '../core/metrics/index.js';
import type { RoundEntry, SiteDice } from '../core/report/index.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { parseFederationConfig, type FederationConfigInput } from '../server/config.js';
import { registerSite } from '../server/index.js';
import type { DemoSite } from './data.js';
import { ServerWorkerMessageSchema, type ServerWorkerMessage } from './server-worker-messages.js';
import type { SiteWorkerConfig } from './site-worker-config.js';

export interface FederationRunOptions {
  outDir: string;
  sites: DemoSite[];
  federation: FederationConfigInput;
  /** Per-site worker settings shared by all sites (preprocessing, reduced size). */
  worker: Omit<SiteWorkerConfig, 'url' | 'site' | 'trainDir' | 'heldOutDir'>;
  log: (line: string) => void;
  /** Called as soon as every site has evaluated a round's global model. */
  onRound: (entry: RoundEntry) => void;
}

export interface FederationRunResult {
  rounds: RoundEntry[];
  /** Model file of the last completed round's global model. */
  finalModelFile: string | null;
  state: string;
}

const WORKER = new URL('./site-worker.js', import.meta.url);
const SERVER_WORKER = new URL('./server-worker.js', import.meta.url);

export async function runFederation(opts: FederationRunOptions): Promise<FederationRunResult> {
  const serverDir = join(opts.outDir, 'server');
  const logDir = join(opts.outDir, 'logs');
  // A demo run is a new federation: the previous run's server state would make it resume instead.
  await rm(serverDir, { recursive: true, force: true });
  await mkdir(serverDir, { recursive: true });
  await mkdir(logDir, { recursive: true });
  const dbFile = join(serverDir, 'federation.sqlite');
  parseFederationConfig(opts.federation); // fail here, naming the field, rather than in the server process
  // As an operator would: each hospital registered with the training cases it agreed to bring, the cap on its FedAvg weight.
  const tokens = opts.sites.map((s) => registerSite(dbFile, s.name, { cases: s.train.length }).token);
  const serverLog = createWriteStream(join(logDir, 'server.log'), { flags: 'w' });
  const server = spawn(process.execPath, nodeArgs(SERVER_WORKER, [JSON.stringify({ dbFile, config: opts.federation })]), {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  createInterface({ input: server.stdout! }).on('line', (line) => serverLog.write(`${line}\n`));
  createInterface({ input: server.stderr! }).on('line', (line) => serverLog.write(`[stderr] ${line}\n`));
  const messages = new EventEmitter<{ message: [ServerWorkerMessage] }>();
  server.on('message', (raw) => {
    const parsed = ServerWorkerMessageSchema.safeParse(raw);
    if (parsed.success) messages.emit('message', parsed.data);
    else serverLog.write(`[demo] ignored a malformed server message: ${JSON.stringify(raw)}\n`);
  });
  const serverExit = exited(server);
  const listening = await Promise.race([
    new Promise<Extract<ServerWorkerMessage, { type: 'listening' }>>((resolve) => messages.on('message', (m) => m.type === 'listening' && resolve(m))),
    serverExit.then(() => null),
  ]);
  if (!listening) {
    serverLog.end();
    throw new FedSegError(`the aggregation server process exited before listening; see ${join(logDir, 'server.log')}`);
  }
  opts.log(`server process listening on ${listening.wsUrl} (operator page ${listening.httpUrl}/); ${opts.sites.length} sites registered`);

  const started = new Map<number, number>();
  const completed = new Map<number, { sites: string[]; seconds: number }>();
  const evaluations = new Map<number, Map<string, Record<string, number>>>();
  const reported = new Set<number>();
  const rounds: RoundEntry[] = [];
  const siteNames = opts.sites.map((s) => s.name);
  const heldOutCount = new Map(opts.sites.map((s) => [s.name, s.heldOut.length]));

  const tryReport = (round: number) => {
    const done = completed.get(round);
    const evals = evaluations.get(round);
    if (!done || reported.has(round) || !evals || !siteNames.every((s) => evals.has(s))) return;
    reported.add(round);
    const entry = { ...roundEntry(round, done, evals, heldOutCount), peakRssMiB: roundPeakMemory(server, children) };
    rounds.push(entry);
    opts.onRound(entry);
  };
  let finished: Extract<ServerWorkerMessage, { type: 'done' }> | null = null;
  const done = new Promise<Extract<ServerWorkerMessage, { type: 'done' }> | null>((resolve) => {
    messages.on('message', (m) => m.type === 'done' && resolve(m));
    // An exit without "done" is a crash; wait a moment so a "done" already in the pipe still wins.
    void serverExit.then(() => sleep(500)).then(() => resolve(null));
  });
  messages.on('message', (m) => {
    switch (m.type) {
      case 'round-started':
        if (!started.has(m.round)) started.set(m.round, Date.now());
        return;
      case 'round-completed':
        completed.set(m.round, { sites: m.sites, seconds: (Date.now() - (started.get(m.round) ?? Date.now())) / 1000 });
        opts.log(`round ${m.round}: aggregated updates from ${m.sites.length} of ${siteNames.length} sites`);
        return tryReport(m.round);
      case 'round-abandoned': return opts.log(`round ${m.round} attempt ${m.attempt} abandoned: ${m.reason}`);
      case 'update-rejected': return opts.log(`round ${m.round}: update from ${m.site} rejected: ${m.reason}`);
      case 'evaluation': {
        const byRound = evaluations.get(m.round) ?? new Map<string, Record<string, number>>();
        byRound.set(m.site, m.metrics);
        evaluations.set(m.round, byRound);
        return tryReport(m.round);
      }
      case 'done':
        finished = m;
        return;
      default:
    }
  });

  const children: ChildProcess[] = [];
  const logs: WriteStream[] = [serverLog];
  try {
    opts.sites.forEach((site, n) => {
      const workerConfig: SiteWorkerConfig = { ...opts.worker, url: listening.wsUrl, site: site.name, trainDir: site.trainDir, heldOutDir: site.heldOutDir };
      const log = createWriteStream(join(logDir, `${site.name}.log`), { flags: 'w' });
      logs.push(log);
      const child = spawn(process.execPath, nodeArgs(WORKER, [JSON.stringify(workerConfig)]), {
        // The token goes through the environment, not argv, so `ps` does not show it.
        env: { ...process.env, FEDSEG_SITE_TOKEN: tokens[n] },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      children.push(child);
      createInterface({ input: child.stdout! }).on('line', (line) => log.write(`${line}\n`));
      createInterface({ input: child.stderr! }).on('line', (line) => log.write(`[stderr] ${line}\n`));
      child.on('exit', (code, signal) => {
        log.write(`[exit] code ${code} signal ${signal}\n`);
        if (code !== 0 && !finished) opts.log(`${site.name} process exited with ${signal ?? `code ${code}`}; see ${join(logDir, `${site.name}.log`)}`);
        // With every site gone the server would wait for a quorum forever.
        if (!finished && children.every((c) => c.exitCode !== null || c.signalCode !== null) && server.connected) server.send({ type: 'stop' });
      });
    });
    const outcome = await done;
    const state = outcome?.state ?? 'crashed';
    // Sites leave on the server's "done"; give them a moment, then make sure none is left behind.
    await Promise.race([Promise.all(children.map(exited)), sleep(15_000)]);
    for (const round of completed.keys()) {
      if (!reported.has(round)) {
        const entry = roundEntry(round, completed.get(round)!, evaluations.get(round) ?? new Map(), heldOutCount);
        rounds.push(entry);
        opts.onRound(entry);
      }
    }
    rounds.sort((a, b) => a.round - b.round);
    if (state !== 'finished') throw new FedSegError(`the federation ended in state "${state}"; see ${join(logDir, 'server.log')} and the site logs`);
    return { rounds, state, finalModelFile: outcome?.finalModelFile ?? null };
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([serverExit, sleep(15_000)]);
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
    await Promise.all(logs.map((l) => new Promise((resolve) => l.end(resolve))));
  }
}

/** Mean of each site's held-out Dice; the global value is the unweighted mean over the sites that reported. */
function roundEntry(round: number, done: { sites: string[]; seconds: number }, evals: Map<string, Record<string, number>>, heldOut: Map<string, number>): RoundEntry {
  const perSite: Record<string, SiteDice> = {};
  for (const [site, m] of [...evals].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
    const dice = (region: Region) => m[regionMetricKey('dice', region)] ?? null;
    perSite[site] = { ET: dice('ET'), TC: dice('TC'), WT: dice('WT'), cases: heldOut.get(site) ?? 0 };
  }
  const mean = (values: Array<number | null | undefined>) => {
    const finite = values.filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v));
    return finite.length > 0 ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
  };
  const sites = Object.values(perSite);
  const metrics = [...evals.values()];
  const hd95 = (region: Region) => mean(metrics.map((m) => m[regionMetricKey('hd95', region)]));
  return {
    round, sitesReturned: done.sites, perSite, seconds: done.seconds,
    dice: { ET: mean(sites.map((s) => s.ET)), TC: mean(sites.map((s) => s.TC)), WT: mean(sites.map((s) => s.WT)) },
    hd95: { ET: hd95('ET'), TC: hd95('TC'), WT: hd95('WT') },
  };
}

/**
 * Peak resident memory of the server and of the largest site since the last call (Linux: VmHWM,
 * then reset through clear_refs so the next round starts from the current size); undefined elsewhere.
 */
function roundPeakMemory(server: ChildProcess, sites: readonly ChildProcess[]): RoundEntry['peakRssMiB'] {
  const peak = (child: ChildProcess): number | null => {
    try {
      const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
      writeFileSync(`/proc/${child.pid}/clear_refs`, '5');
      return Number.isFinite(kib) ? kib / 1024 : null;
    } catch {
      return null;
    }
  };
  const serverPeak = peak(server);
  const sitePeaks = sites.map(peak).filter((v): v is number => v !== null);
  return serverPeak === null || sitePeaks.length === 0 ? undefined : { server: serverPeak, largestSite: Math.max(...sitePeaks) };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
