/**
 * Runs one federation on loopback: the aggregation server in this process (its own WebSocket and
 * HTTP listener, SQLite and checkpoints under `<out>/server`) and one separate Node process per
 * site (demo/site-worker.ts driving the shared site runtime). Collects per-round results from the
 * server's events: who returned, round time, and each site's evaluation of the new global model.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FedSegError } from '../core/errors.js';
import type { RoundEntry, SiteDice } from '../core/report/index.js';
import { parseFederationConfig, type FederationConfigInput } from '../server/config.js';
import { registerSite, startServer } from '../server/index.js';
import type { DemoSite } from './data.js';
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

const WORKER = fileURLToPath(new URL('./site-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

export async function runFederation(opts: FederationRunOptions): Promise<FederationRunResult> {
  const serverDir = join(opts.outDir, 'server');
  const logDir = join(opts.outDir, 'logs');
  // A demo run is a new federation: the previous run's server state would make it resume instead.
  await rm(serverDir, { recursive: true, force: true });
  await mkdir(serverDir, { recursive: true });
  await mkdir(logDir, { recursive: true });
  const dbFile = join(serverDir, 'federation.sqlite');
  const config = parseFederationConfig(opts.federation);
  const tokens = opts.sites.map((s) => registerSite(dbFile, s.name).token);
  const serverLog = createWriteStream(join(logDir, 'server.log'), { flags: 'w' });
  const server = await startServer({ config, dbFile, port: 0, log: (line) => serverLog.write(`${new Date().toISOString()} ${line}\n`) });
  opts.log(`server listening on ${server.wsUrl} (operator page ${server.httpUrl}/); ${opts.sites.length} sites registered`);

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
    const entry = roundEntry(round, done, evals, heldOutCount);
    rounds.push(entry);
    opts.onRound(entry);
  };
  const { federation } = server;
  federation.on('round-started', (round) => {
    if (!started.has(round)) started.set(round, Date.now());
  });
  federation.on('round-completed', (round, sites) => {
    completed.set(round, { sites, seconds: (Date.now() - (started.get(round) ?? Date.now())) / 1000 });
    opts.log(`round ${round}: aggregated updates from ${sites.length} of ${siteNames.length} sites`);
    tryReport(round);
  });
  federation.on('round-abandoned', (round, attempt, reason) => opts.log(`round ${round} attempt ${attempt} abandoned: ${reason}`));
  federation.on('update-rejected', (round, site, reason) => opts.log(`round ${round}: update from ${site} rejected: ${reason}`));
  federation.on('evaluation', (round, site, metrics) => {
    const m = evaluations.get(round) ?? new Map<string, Record<string, number>>();
    m.set(site, metrics);
    evaluations.set(round, m);
    tryReport(round);
  });

  const children: ChildProcess[] = [];
  const logs: WriteStream[] = [serverLog];
  try {
    opts.sites.forEach((site, n) => {
      const workerConfig: SiteWorkerConfig = { ...opts.worker, url: server.wsUrl, site: site.name, trainDir: site.trainDir, heldOutDir: site.heldOutDir };
      const log = createWriteStream(join(logDir, `${site.name}.log`), { flags: 'w' });
      logs.push(log);
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(workerConfig)], {
        cwd: REPO_ROOT,
        // The token goes through the environment, not argv, so `ps` does not show it.
        env: { ...process.env, FEDSEG_SITE_TOKEN: tokens[n] },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      children.push(child);
      createInterface({ input: child.stdout! }).on('line', (line) => log.write(`${line}\n`));
      createInterface({ input: child.stderr! }).on('line', (line) => log.write(`[stderr] ${line}\n`));
      child.on('exit', (code, signal) => {
        log.write(`[exit] code ${code} signal ${signal}\n`);
        if (code !== 0 && federation.state === 'running') opts.log(`${site.name} process exited with ${signal ?? `code ${code}`}; see ${join(logDir, `${site.name}.log`)}`);
        // With every site gone the server would wait for a quorum forever.
        const waiting = federation.state === 'running' || federation.state === 'starting';
        if (waiting && children.every((c) => c.exitCode !== null || c.signalCode !== null)) federation.stop();
      });
    });
    const state = await federation.done;
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
    const last = server.store.completedRounds().at(-1);
    return { rounds, state, finalModelFile: last?.checkpoint ? join(serverDir, 'checkpoints', last.checkpoint) : null };
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await server.close();
    await Promise.all(logs.map((l) => new Promise((resolve) => l.end(resolve))));
  }
}

/** Mean of each site's held-out Dice; the global value is the unweighted mean over the sites that reported. */
function roundEntry(round: number, done: { sites: string[]; seconds: number }, evals: Map<string, Record<string, number>>, heldOut: Map<string, number>): RoundEntry {
  const perSite: Record<string, SiteDice> = {};
  for (const [site, m] of [...evals].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))) {
    perSite[site] = { ET: m.dice_ET ?? null, TC: m.dice_TC ?? null, WT: m.dice_WT ?? null, cases: heldOut.get(site) ?? 0 };
  }
  const mean = (values: Array<number | null | undefined>) => {
    const finite = values.filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v));
    return finite.length > 0 ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
  };
  const sites = Object.values(perSite);
  const metrics = [...evals.values()];
  return {
    round, sitesReturned: done.sites, perSite, seconds: done.seconds,
    dice: { ET: mean(sites.map((s) => s.ET)), TC: mean(sites.map((s) => s.TC)), WT: mean(sites.map((s) => s.WT)) },
    hd95: { ET: mean(metrics.map((m) => m.hd95_ET)), TC: mean(metrics.map((m) => m.hd95_TC)), WT: mean(metrics.map((m) => m.hd95_WT)) },
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
