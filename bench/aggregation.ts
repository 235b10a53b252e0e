/**
 * Federation costs for the full-size U-Net (filters 16..256): streaming FedAvg time for 5 updates
 * (one update at a time into a float64 sum, as the server aggregates) against its memory-bandwidth
 * floor (per update read 4P + read and write the 8P sum, at this machine's measured memcpy rate),
 * server-side decode + validation per update (in place, as the server's intake does), and bytes on the wire per site per round against
 * 2 x 4 x P (global model down + update up, raw float32). The server sends each new global once
 * (the evaluation copy) and names it by hash when the next round trains on it.
 */
import { encodeFrame } from '../core/federation/protocol.js';
import { aggregateInMemory, FedAvg, type ClientUpdate } from '../core/federation/strategies/index.js';
import { parameterCount } from '../core/federation/tensors.js';
import { validateUpdate } from '../core/federation/validate-update.js';
import { makeModelConfig } from '../core/model/config.js';
import { initialWeights } from '../core/model/init.js';
import { architectureHash, decodeModel, encodeModel } from '../core/weights/index.js';

const SITES = 5;

/** Best wall and CPU milliseconds over `repeats` runs (CPU time too: the shared machine's load inflates wall time). */
function timeIt(repeats: number, fn: () => void): { wall: number; cpu: number } {
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    fn();
    const used = process.cpuUsage(c);
    wall = Math.min(wall, performance.now() - t);
    cpu = Math.min(cpu, (used.user + used.system) / 1000);
  }
  return { wall, cpu };
}

/** memcpy bandwidth in bytes/s (read + write counted), from TypedArray.set on a buffer far above cache size. */
function memcpyBandwidth(repeats: number): number {
  const size = 64 * 1024 * 1024;
  const src = new Uint8Array(size).fill(1);
  const dst = new Uint8Array(size);
  dst.set(src); // fault the pages in
  const { cpu } = timeIt(repeats, () => dst.set(src));
  return (2 * size) / (cpu / 1000);
}

export async function runAggregationBench(options: { quick?: boolean } = {}) {
  const repeats = options.quick ? 2 : 5;
  const config = makeModelConfig();
  const hash = architectureHash(config);
  const global = initialWeights(config, 1);
  const P = parameterCount(global);
  const updates: ClientUpdate[] = Array.from({ length: SITES }, (_, k) => ({
    site: `site-${k + 1}`, numCases: 10 + k,
    weights: global.map((t) => ({ ...t, data: t.data.map((v, i) => v + 1e-3 * (((i + k) % 7) - 3)) })),
  }));

  const fedAvg = timeIt(repeats, () => aggregateInMemory(new FedAvg(), 1, updates, global));
  const bandwidth = memcpyBandwidth(repeats * 2);
  const floorBytes = SITES * 20 * P + 4 * P;
  const floorMs = (floorBytes / bandwidth) * 1000;

  const modelBytes = encodeModel(config, updates[0].weights, { round: 1 });
  const globalFrame = encodeFrame({ kind: 'global', purpose: 'train', round: 1, architectureHash: hash, sha256: '0'.repeat(64) }, encodeModel(config, global));
  const updateFrame = encodeFrame({ kind: 'update', round: 1, attempt: 1, architectureHash: hash, numCases: 10, metrics: { loss: 0.5, val_dice_WT: 0.8 }, trainingSeconds: 100 }, modelBytes);
  const validate = timeIt(repeats, () => {
    const decoded = decodeModel(modelBytes, { expectConfig: config, shareMemory: true });
    validateUpdate({ kind: 'update', round: 1, attempt: 1, architectureHash: hash, numCases: 10, metrics: {}, trainingSeconds: 1 }, decoded.tensors, decoded.architectureHash,
      { round: 1, attempt: 1, architectureHash: hash, global, declaredCases: 10, registeredCases: null, alreadySubmitted: false, participating: true });
  });
  // Steady state per site per round: the new global arrives once (to evaluate, and then named by
  // hash as next round's starting point) and the update goes up once. Round 1 adds one full copy.
  const wirePerSite = globalFrame.length + updateFrame.length;
  const wireFirstRound = wirePerSite + globalFrame.length;
  const rawFloor = 2 * 4 * P;

  const rows: [string, string][] = [
    ['parameters P (U-Net 16..256, depth 5)', P.toLocaleString('en-US')],
    [`FedAvg of ${SITES} updates (streamed into a float64 sum), CPU time`, `${fedAvg.cpu.toFixed(1)} ms (wall ${fedAvg.wall.toFixed(1)} ms)`],
    ['memcpy bandwidth (read+write, per CPU second)', `${(bandwidth / 1e9).toFixed(2)} GB/s`],
    [`bandwidth floor: ${SITES}x(read 4P + read/write 8P sum) + write 4P = ${(floorBytes / 1e6).toFixed(1)} MB`, `${floorMs.toFixed(1)} ms`],
    ['FedAvg CPU time / floor', `${(fedAvg.cpu / floorMs).toFixed(2)}x`],
    ['decode + validate one update (SHA-256, shapes, finite, norm)', `${validate.cpu.toFixed(1)} ms CPU (wall ${validate.wall.toFixed(1)} ms)`],
    ['wire per site per round: global down + update up', `${(wirePerSite / 1e6).toFixed(3)} MB`],
    ['  vs 2 x 4 x P raw float32', `${(rawFloor / 1e6).toFixed(3)} MB (overhead ${(100 * (wirePerSite / rawFloor - 1)).toFixed(3)} %)`],
    ['  round 1 only (initial model sent in full too)', `${(wireFirstRound / 1e6).toFixed(3)} MB`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const table = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
  const json = {
    name: 'aggregation', parameters: P, sites: SITES, fedAvgCpuMs: fedAvg.cpu, fedAvgWallMs: fedAvg.wall, memcpyGBps: bandwidth / 1e9, floorMs,
    fedAvgOverFloor: fedAvg.cpu / floorMs, validateUpdateCpuMs: validate.cpu, validateUpdateWallMs: validate.wall, wireBytesPerSitePerRound: wirePerSite, rawFloorBytes: rawFloor, wireOverheadFraction: wirePerSite / rawFloor - 1,
    wireBytesFirstRound: wireFirstRound,
  };
  return { table, json };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { table, json } = await runAggregationBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${table}\n${JSON.stringify(json)}\n`);
}
