import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateInMemory, createStrategy, FedAvg, type ClientUpdate } from '../../core/federation/strategies/index.js';
import { l2Distance, type TensorList } from '../../core/federation/tensors.js';
import { clipFactor, clipUpdate } from '../../core/privacy/clip.js';
import { DifferentiallyPrivate } from '../../core/privacy/dp-aggregation.js';
import { GaussianStream, noiseKey } from '../../core/privacy/gaussian-noise.js';
import { PrivacyConfigSchema } from '../../core/privacy/config.js';
import { checkBudget } from '../../core/privacy/budget.js';
import { exactGaussianEpsilon } from '../../core/privacy/accountant.js';
import { FedSegError } from '../../core/errors.js';
import { parseFederationConfig } from '../../server/config.js';
import { TINY_MODEL } from '../server/helpers.js';

const model = (w: number[], b: number): TensorList => [{ name: 'w', shape: [w.length], data: Float32Array.from(w) }, { name: 'b', shape: [1], data: Float32Array.of(b) }];
const update = (site: string, numCases: number, w: number[], b: number): ClientUpdate => ({ site, numCases, weights: model(w, b) });
const base = { epochs: 1, learningRate: 1e-3, batchSize: 1, mu: 0, seed: 1 };

test('clipping: an update beyond C is scaled to norm C along its own direction; one within C is sent unchanged', () => {
  const global = model([1, 1, 1], 1);
  const local = model([4, 5, 1], 1); // delta (3, 4, 0, 0): norm 5
  const clipped = clipUpdate(global, local, 2);
  assert.equal(clipped.norm, 5);
  assert.equal(clipped.factor, 0.4);
  assert.ok(Math.abs(l2Distance(clipped.weights, global) - 2) < 1e-6);
  assert.deepEqual([...clipped.weights[0].data].map((v) => Math.round(v * 1e6) / 1e6), [2.2, 2.6, 1]);
  const within = clipUpdate(global, local, 5);
  assert.equal(within.factor, 1);
  assert.equal(within.weights, local);
  assert.equal(clipFactor(0, 1), 1);
  assert.throws(() => clipFactor(1, 0), /clip norm must be positive/);
  assert.throws(() => clipUpdate(global, model([Number.NaN, 1, 1], 1), 1), FedSegError);
});

test('noise: the same key gives the same draws; N(0, std^2) by mean, variance and the 1 and 2 sigma mass (fixed seed)', () => {
  const n = 400_000;
  const draw = (key: Buffer, std: number) => {
    const values = new Float64Array(n);
    new GaussianStream(key).addTo(values, std);
    return values;
  };
  const a = draw(noiseKey(7, 3), 2.5);
  assert.deepEqual(a, draw(noiseKey(7, 3), 2.5));
  assert.notDeepEqual(a.subarray(0, 8), draw(noiseKey(7, 4), 2.5).subarray(0, 8));
  assert.notDeepEqual(noiseKey(undefined, 3), noiseKey(undefined, 3));
  const mean = a.reduce((s, v) => s + v, 0) / n;
  const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  // Standard errors: mean 2.5 / sqrt(n) = 0.004; variance 6.25 * sqrt(2 / n) = 0.014. Allow 5 of each.
  assert.ok(Math.abs(mean) < 5 * 2.5 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 6.25) < 5 * 6.25 * Math.sqrt(2 / n), `variance ${variance}`);
  const within = (k: number) => a.filter((v) => Math.abs(v) < k * 2.5).length / n;
  assert.ok(Math.abs(within(1) - 0.682689) < 0.004, `1 sigma mass ${within(1)}`);
  assert.ok(Math.abs(within(2) - 0.954500) < 0.002, `2 sigma mass ${within(2)}`);
  // Sums of independent draws add variances: rows of the same stream are not correlated.
  let lag = 0;
  for (let i = 1; i < n; i++) lag += a[i] * a[i - 1];
  assert.ok(Math.abs(lag / (n - 1) / 6.25) < 5 / Math.sqrt(n), `lag-1 correlation ${lag / (n - 1) / 6.25}`);
});

test('DP-FedAvg: global + (sum of updates clipped to C + noise sigma C) / D with D the configured sites, equal weights, seeded', () => {
  const global = model([0, 0, 0], 0);
  const updates = [update('a', 1, [3, 4, 0], 0), update('b', 100, [0.1, 0, 0], 0), update('c', 5, [0, 0, 0.2], 0.1)];
  const sites = ['a', 'b', 'c', 'd']; // d declines: the denominator stays 4
  const round = (noiseMultiplier: number, noiseSeed = 11) => {
    const dp = new DifferentiallyPrivate(new FedAvg(), { clip: 1, noiseMultiplier, samplingRate: 1, noiseSeed });
    dp.configureRound(1, sites, base);
    return { next: aggregateInMemory(dp, 1, updates, global), report: dp.lastReport! };
  };
  // Tiny noise: the clipped, equally weighted sum over D = 4: ((0.6, 0.8, 0) + (0.1, 0, 0) + (0, 0, 0.2)) / 4.
  const quiet = round(1e-9);
  assert.deepEqual([...quiet.next[0].data].map((v) => Math.round(v * 1e6) / 1e6), [0.175, 0.2, 0.05]);
  assert.ok(Math.abs(quiet.next[1].data[0] - 0.025) < 1e-6);
  assert.deepEqual({ ...quiet.report, noiseStd: 0, medianNorm: Math.round(quiet.report.medianNorm * 1e6) / 1e6 }, { round: 1, updates: 3, clipped: 1, medianNorm: 0.223607, denominator: 4, noiseStd: 0 });
  // Seeded noise is bit-reproducible; another seed gives other noise; the noise std is sigma C / D.
  const noisy = round(2);
  assert.deepEqual(noisy.next, round(2).next);
  assert.notDeepEqual(noisy.next, round(2, 12).next);
  assert.equal(noisy.report.noiseStd, 0.5);
});

test('DP-FedAvg adds its noise before the server optimiser, refuses coordinate-wise strategies, and the config names bad fields', () => {
  const global = model([0, 0, 0], 0);
  const updates = [update('a', 1, [0.5, 0, 0], 0)];
  const dp = new DifferentiallyPrivate(createStrategy({ name: 'fedavgm', eta: 1, beta: 0.5 }), { clip: 1, noiseMultiplier: 1e-9, samplingRate: 1, noiseSeed: 1 });
  dp.configureRound(1, ['a'], base);
  aggregateInMemory(dp, 1, updates, global);
  dp.configureRound(2, ['a'], base);
  // Momentum 0.5 on the second identical pseudo-gradient: 0.5 * 0.5 + 0.5 = 0.75.
  const second = aggregateInMemory(dp, 2, updates, global);
  assert.ok(Math.abs(second[0].data[0] - 0.75) < 1e-6, `FedAvgM after DP: ${second[0].data[0]}`);
  const median = new DifferentiallyPrivate(createStrategy({ name: 'median' }), { clip: 1, noiseMultiplier: 1, samplingRate: 1 });
  median.configureRound(1, ['a'], base);
  assert.throws(() => aggregateInMemory(median, 1, updates, global), /coordinate-wise/);
  const unconfigured = new DifferentiallyPrivate(new FedAvg(), { clip: 1, noiseMultiplier: 1, samplingRate: 1 });
  assert.throws(() => aggregateInMemory(unconfigured, 1, updates, global), /fixed denominator/);

  const ok = PrivacyConfigSchema.parse({ clip: 0.5, noiseMultiplier: 1.1, budget: { epsilon: 8, delta: 1e-5 } });
  assert.deepEqual(ok, { clip: 0.5, noiseMultiplier: 1.1, delta: 1e-5, budget: { epsilon: 8, delta: 1e-5 }, mode: 'central', samplingRate: 1 });
  const bad = PrivacyConfigSchema.safeParse({ clip: 0.5, noiseMultiplier: 1.1, budget: { epsilon: 8, delta: 1e-5 }, samplingRate: 0.5 });
  assert.ok(!bad.success && /site sampling is not implemented/.test(bad.error.issues[0].message));
  assert.equal(PrivacyConfigSchema.safeParse({ clip: -1, noiseMultiplier: 1, budget: { epsilon: 8, delta: 1e-5 } }).error?.issues[0].path.join('.'), 'clip');
});

test('budget: the next round is refused exactly when its epsilon at the budget delta would exceed the budget', () => {
  const config = PrivacyConfigSchema.parse({ clip: 1, noiseMultiplier: 2, budget: { epsilon: 2.5, delta: 1e-5 } });
  const first = checkBudget(config, 0);
  assert.equal(first.refusal, null);
  assert.equal(first.privacy.epsilonSoFar, 0);
  assert.equal(first.privacy.epsilonAfterRound, exactGaussianEpsilon(2, 1e-5));
  const second = checkBudget(config, 1);
  assert.equal(second.privacy.epsilonSoFar, first.privacy.epsilonAfterRound);
  assert.equal(second.epsilonAtBudgetDelta, exactGaussianEpsilon(2 / Math.SQRT2, 1e-5));
  assert.match(second.refusal ?? '', /^privacy budget: round 2 would bring epsilon to 2\.\d{3} at delta 0\.00001, over the budget of 2\.5; the federation ends after 1 round\(s\)/);
});

test('federation config: privacy with a coordinate-wise strategy, or in distributed mode without secure aggregation, is refused, naming the field', () => {
  const privacy = { clip: 1, noiseMultiplier: 2, budget: { epsilon: 8, delta: 1e-5 } };
  const refused = (overrides: Record<string, unknown>, field: string, message: RegExp) =>
    assert.throws(() => parseFederationConfig({ model: TINY_MODEL, rounds: 2, ...overrides }, 'federation.json'), (e: unknown) => e instanceof FedSegError && e.where.field === field && message.test(e.message));
  refused({ strategy: { name: 'median' }, privacy }, 'strategy.name', /strategy median \(coordinate-wise\) never forms/);
  refused({ privacy: { ...privacy, mode: 'distributed' } }, 'privacy.mode', /"distributed" needs secureAggregation/);
  refused({ privacy: { ...privacy, samplingRate: 0.5 } }, 'privacy.samplingRate', /site sampling is not implemented/);
  assert.equal(parseFederationConfig({ model: TINY_MODEL, rounds: 2, strategy: { name: 'fedadam' }, privacy }).privacy?.mode, 'central');
});
