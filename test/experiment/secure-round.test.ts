/**
 * The experiment's secure rounds (experiment/secure-round.ts): the real SecAggSite/SecAggServer
 * objects in one process give plain FedAvg within the fixed-point bound, and under distributed DP
 * exactly the clipped equal-weight sum plus each site's seeded noise, over the fixed denominator.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateInMemory, FedAvg, type ClientUpdate } from '../../core/federation/strategies/index.js';
import type { TensorList } from '../../core/federation/tensors.js';
import { DistributedDp, siteNoise } from '../../core/privacy/dp-aggregation.js';
import { deriveEncoding, errorBound } from '../../core/privacy/fixed-point.js';
import { GaussianStream, siteNoiseKey } from '../../core/privacy/gaussian-noise.js';
import { Mulberry32 } from '../../core/random.js';
import { aggregateSecurely } from '../../experiment/secure-round.js';

const rng = new Mulberry32(5);
const global: TensorList = [{ name: 'w', shape: [300], data: Float32Array.from({ length: 300 }, () => rng.next() - 0.5) }, { name: 'b', shape: [20], data: new Float32Array(20) }];
const updates: ClientUpdate[] = [0.01, -0.02, 0.004, 0.03].map((scale, k) => ({
  site: `site-${k + 1}`, numCases: k + 2,
  weights: global.map((t) => ({ ...t, data: Float32Array.from(t.data, (g) => g + scale * (rng.next() - 0.3)) })),
}));
const flat = (w: TensorList) => w.flatMap((t) => [...t.data]);
const SEED = 17;

test('experiment secure round: FedAvg through masks equals plain FedAvg within the fixed-point bound', () => {
  const strategy = new FedAvg();
  strategy.configureRound(1, updates.map((u) => u.site), { epochs: 1, learningRate: 1, batchSize: 1, mu: 0, seed: 0 });
  const secure = flat(aggregateSecurely(strategy, 1, updates, global, { threshold: 3, clipRange: 1, dp: null, noiseSeed: SEED }));
  const plain = flat(aggregateInMemory(new FedAvg(), 1, updates, global));
  const bound = errorBound(deriveEncoding(1, 2 + 3 + 4 + 5)) + 2 ** -24;
  secure.forEach((v, i) => assert.ok(Math.abs(v - plain[i]) <= bound, `weight ${i}: ${v} vs ${plain[i]}`));
});

test('experiment secure round under distributed DP: the clipped sum plus every site\'s seeded noise, over D', () => {
  const dp = { clip: 0.05, noiseMultiplier: 0.5, samplingRate: 1, threshold: 3 };
  const strategy = new DistributedDp(new FedAvg(), dp);
  strategy.configureRound(2, [...updates.map((u) => u.site), 'site-absent'], { epochs: 1, learningRate: 1, batchSize: 1, mu: 0, seed: 0 });
  const noise = siteNoise(dp, dp.threshold);
  const got = flat(aggregateSecurely(strategy, 2, updates, global, { threshold: 3, clipRange: 1, dp: noise, noiseSeed: SEED }));
  // Expected: each site's update clipped to C (less a grid margin far below this tolerance) plus its N(0, noiseStd^2) keyed by (seed, round 2, attempt 1, site), summed, over D = 5 configured sites.
  const start = flat(global);
  const sum = new Float64Array(start.length);
  for (const u of updates) {
    const delta = flat(u.weights).map((v, i) => v - start[i]);
    const factor = Math.min(1, dp.clip / Math.hypot(...delta));
    const draws = new Float64Array(start.length);
    new GaussianStream(siteNoiseKey(SEED, 2, 1, u.site)).addTo(draws, noise.noiseStd);
    delta.forEach((d, i) => (sum[i] += d * factor + draws[i]));
  }
  const tolerance = 1e-6;
  got.forEach((v, i) => assert.ok(Math.abs(v - (start[i] + sum[i] / 5)) < tolerance, `weight ${i}: ${v} vs ${start[i] + sum[i] / 5}`));
  assert.deepEqual(strategy.lastReport, { round: 2, updates: 4, denominator: 5, noiseStd: (noise.noiseStd * 2) / 5 });
});
