/**
 * The server side of `fedseg bench scale`, run in its own process so its memory and CPU are its own:
 * registers the sites, runs the real aggregation server on loopback, and reports to the parent per
 * round: wall time, CPU by round phase (the whole process, and its event-loop thread alone), RSS,
 * event-loop lag and bytes on the wire.
 *
 *   node --import tsx bench/scale-server.ts '{"dir": "...", "sites": 20, "strategy": "fedavg", "rounds": 2, "model": {}}'
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parameterCount } from '../core/model/parameters.js';
import { parseFederationConfig } from '../server/config.js';
import { registerSite, startServer } from '../server/index.js';
import type { RoundPhase } from '../server/round-state.js';

export const ScaleServerOptionsSchema = z.object({
  dir: z.string(),
  sites: z.int().positive(),
  strategy: z.enum(['fedavg', 'median']),
  rounds: z.int().positive(),
  model: z.record(z.string(), z.unknown()),
});
export type ScaleServerOptions = z.infer<typeof ScaleServerOptionsSchema>;

/** The federation's round phases, and 'between' rounds (evaluation frames, waiting). */
type PhaseName = RoundPhase | 'between';

export interface ScaleRoundReport {
  round: number;
  seconds: number;
  /** Server CPU seconds (user + system, all threads) spent while the round was in each phase. */
  cpuSeconds: Record<PhaseName, number>;
  /** The same for the event-loop thread alone (Linux; zeros elsewhere): what update intake leaves on the loop. */
  loopCpuSeconds: Record<PhaseName, number>;
  peakRssMB: number;
  /** At the sampled peak: V8 heap and ArrayBuffer (Buffer) memory, live or awaiting collection. */
  atPeak: { heapMB: number; arrayBuffersMB: number };
  rssAfterMB: number;
  /**
   * Event-loop lag: how late the 20 ms sampler ran. Not perf_hooks' monitorEventLoopDelay: a stall
   * inside the round's last step (checkpoint, new model sent out) would be recorded only after this
   * report was taken, so it missed the round's longest stall.
   */
  lagMaxMs: number;
  lagP99Ms: number;
  /** The phases before and after the longest lag: where the loop stalled. */
  longestStall: { from: PhaseName; to: PhaseName };
  mbIn: number;
  mbOut: number;
}

export type ScaleServerMessage =
  | { type: 'ready'; wsUrl: string; tokens: string[]; parameters: number; frameCap: number }
  | { type: 'done'; state: string; rounds: ScaleRoundReport[]; peakRssMB: number; startRssMB: number; sampledPeak: { rssMB: number; heapMB: number; arrayBuffersMB: number; when: string } };

const SAMPLE_MS = 20;
const MB = 1e6;

/**
 * This process's peak RSS in MB. Not getrusage's maxRSS: Linux carries that across exec from the
 * process that forked it, so it would report the bench parent's RSS at spawn time (2 GB after a
 * 100-site run). /proc's VmHWM belongs to this process's own memory map.
 */
function peakRssMB(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return (Number(hwm[1]) * 1024) / MB;
  } catch {
    // not Linux: getrusage is the best there is
  }
  return (process.resourceUsage().maxRSS * 1024) / MB;
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** CPU seconds the calling thread has run (the kernel's scheduler statistics: nanoseconds), or 0 where /proc has none. */
function threadCpuSeconds(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e9;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const o = ScaleServerOptionsSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
  const dbFile = join(o.dir, 'server.db');
  const tokens = Array.from({ length: o.sites }, (_, i) => registerSite(dbFile, `site-${String(i + 1).padStart(4, '0')}`, { cases: 10 }).token);
  const config = parseFederationConfig({
    model: o.model, rounds: o.rounds, minSites: o.sites, strategy: { name: o.strategy }, seed: 1,
    approvalDeadlineS: 600, trainingDeadlineS: 900, evaluationDeadlineS: 120, retryDelayS: 0, heartbeatS: 60,
  });
  const startRssMB = process.memoryUsage.rss() / MB;
  const server = await startServer({ config, dbFile, port: 0, adminToken: 'scale-bench-admin-token-7d3f9a' });
  const federation = server.federation;
  const parameters = parameterCount(config.modelConfig);
  process.send!({ type: 'ready', wsUrl: server.wsUrl, tokens, parameters, frameCap: config.maxMessageBytes } satisfies ScaleServerMessage);

  const reports: ScaleRoundReport[] = [];
  let cpu = process.cpuUsage();
  let loopCpu = threadCpuSeconds();
  let round: { started: number; cpuSeconds: Record<PhaseName, number>; loopCpuSeconds: Record<PhaseName, number>; lags: number[]; lagMax: number; longestStall: ScaleRoundReport['longestStall']; peakRss: number; atPeak: ScaleRoundReport['atPeak']; bytesIn: number; bytesOut: number } | null = null;
  let completed = 0;
  const sampledPeak = { rssMB: 0, heapMB: 0, arrayBuffersMB: 0, when: 'start' };
  let peakSeen = 0;
  const traffic = () => Object.values(federation.connectionStats()).reduce((t, s) => ({ in: t.in + s.bytesReceived, out: t.out + s.bytesSent }), { in: 0, out: 0 });
  let lastPhase: PhaseName = 'between';
  let lastSampleAt = performance.now();
  const sample = () => {
    const now = performance.now();
    const gap = now - lastSampleAt;
    lastSampleAt = now;
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const loopUsed = threadCpuSeconds() - loopCpu;
    loopCpu += loopUsed;
    const memory = process.memoryUsage();
    const breakdown = { heapMB: memory.heapTotal / MB, arrayBuffersMB: memory.arrayBuffers / MB };
    if (round) {
      round.cpuSeconds[lastPhase] += (used.user + used.system) / 1e6;
      round.loopCpuSeconds[lastPhase] += loopUsed;
      if (memory.rss > round.peakRss) {
        round.peakRss = memory.rss;
        round.atPeak = breakdown;
      }
    }
    const maxRss = peakRssMB();
    if (maxRss > peakSeen + 50) {
      console.error(`scale server: peak RSS ${peakSeen.toFixed(0)} -> ${maxRss.toFixed(0)} MB by ${lastPhase} after round ${completed}`);
      peakSeen = maxRss;
    }
    if (memory.rss / MB > sampledPeak.rssMB) Object.assign(sampledPeak, { rssMB: memory.rss / MB, ...breakdown, when: `after round ${completed}, ${lastPhase}` });
    const phase = federation.currentRound()?.phase ?? 'between';
    if (round) {
      const late = Math.max(0, gap - SAMPLE_MS);
      if (late > round.lagMax) Object.assign(round, { lagMax: late, longestStall: { from: lastPhase, to: phase } });
      round.lags.push(late);
    }
    lastPhase = phase;
  };
  const sampler = setInterval(sample, SAMPLE_MS);
  federation.on('round-started', () => {
    sample();
    const t = traffic();
    const phases = (): Record<PhaseName, number> => ({ approval: 0, 'key-exchange': 0, training: 0, unmasking: 0, aggregating: 0, between: 0 });
    round = { started: performance.now(), cpuSeconds: phases(), loopCpuSeconds: phases(), peakRss: 0, atPeak: { heapMB: 0, arrayBuffersMB: 0 }, bytesIn: t.in, bytesOut: t.out, lags: [], lagMax: 0, longestStall: { from: 'between', to: 'between' } };
  });
  federation.on('round-completed', (n) => {
    sample();
    const r = round!;
    completed = n;
    // The evaluation frames were queued (and counted) before this event.
    const t = traffic();
    reports.push({
      round: n, seconds: (performance.now() - r.started) / 1000, cpuSeconds: r.cpuSeconds, loopCpuSeconds: r.loopCpuSeconds, peakRssMB: r.peakRss / MB, atPeak: r.atPeak, rssAfterMB: process.memoryUsage.rss() / MB,
      lagMaxMs: r.lagMax, lagP99Ms: percentile(r.lags, 0.99), longestStall: r.longestStall, mbIn: (t.in - r.bytesIn) / MB, mbOut: (t.out - r.bytesOut) / MB,
    });
  });
  const state = await federation.done;
  sample();
  clearInterval(sampler);
  await server.close();
  process.send!({ type: 'done', state, rounds: reports, peakRssMB: peakRssMB(), startRssMB, sampledPeak } satisfies ScaleServerMessage, () => process.exit(0));
}

await main();
