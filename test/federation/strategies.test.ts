import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  aggregateInMemory, createStrategy, FedAvg, FedOpt, StrategyConfigSchema, WeightedAverage, type ClientUpdate, type Strategy,
} from '../../core/federation/strategies/index.js';
import { clipInPlace, lowerMedian, planBounds } from '../../core/federation/bound-updates.js';
import { l2Distance, type TensorList } from '../../core/federation/tensors.js';
import { FedSegError } from '../../core/errors.js';

const like: TensorList = [{ name: 'w', shape: [2, 2], data: new Float32Array(4) }, { name: 'b', shape: [1], data: new Float32Array(1) }];
const upd = (site: string, numCases: number, w: number[], b: number): ClientUpdate => ({
  site, numCases, weights: [{ name: 'w', shape: [2, 2], data: Float32Array.from(w) }, { name: 'b', shape: [1], data: Float32Array.of(b) }],
});
const base = { epochs: 2, learningRate: 1e-3, batchSize: 2, mu: 0, seed: 1 };
const federatedAverage = (updates: readonly ClientUpdate[], global: TensorList) => aggregateInMemory(new FedAvg(), 1, updates, global);
const coordinateMedian = (updates: readonly ClientUpdate[], global: TensorList, blockSize?: number) => aggregateInMemory(createStrategy({ name: 'median' }), 1, updates, global, blockSize);
const trimmedMean = (updates: readonly ClientUpdate[], global: TensorList, beta: number) => aggregateInMemory(createStrategy({ name: 'trimmed-mean', beta }), 1, updates, global);
const step = (strategy: Strategy, round: number, updates: readonly ClientUpdate[], global: TensorList) => aggregateInMemory(strategy, round, updates, global);

test('FedAvg is sum(n_k w_k) / sum(n_k); the streaming accumulator gives the same result', () => {
  const updates = [upd('a', 1, [1, 2, 3, 4], 10), upd('b', 3, [5, 6, 7, 8], 20)];
  const avg = federatedAverage(updates, like);
  assert.deepEqual([...avg[0].data], [4, 5, 6, 7]);
  assert.deepEqual([...avg[1].data], [17.5]);
  const stream = new WeightedAverage(like);
  for (const u of updates) stream.add(u.weights, u.numCases);
  assert.deepEqual(stream.result().map((t) => [...t.data]), avg.map((t) => [...t.data]));
  assert.throws(() => federatedAverage([], like), FedSegError);
  assert.throws(() => coordinateMedian([], like), FedSegError);
  assert.throws(() => federatedAverage([upd('a', 0, [1, 2, 3, 4], 1)], like), /positive/);
});

test('FedAvg accumulates in float64: a tiny update is not lost against a large one', () => {
  const updates = [upd('big', 1, [1e7, 0, 0, 0], 0), ...Array.from({ length: 1000 }, (_, i) => upd(`s${i}`, 1, [1, 0, 0, 0], 0))];
  assert.equal(federatedAverage(updates, like)[0].data[0], Math.fround((1e7 + 1000) / 1001));
});

test('median and trimmed mean ignore an outlier; FedAvg does not', () => {
  const updates = [upd('a', 1, [1, 1, 1, 1], 1), upd('b', 1, [2, 2, 2, 2], 2), upd('c', 1, [3, 3, 3, 3], 3), upd('evil', 100, [1e6, -1e6, 1e6, 0], 1e6)];
  assert.deepEqual([...coordinateMedian(updates, like)[0].data], [2.5, 1.5, 2.5, 1.5]);
  assert.deepEqual([...trimmedMean(updates, like, 0.25)[0].data], [2.5, 1.5, 2.5, 1.5]);
  assert.ok(federatedAverage(updates, like)[0].data[0] > 1e5);
  assert.throws(() => createStrategy({ name: 'trimmed-mean', beta: 0.6 }), FedSegError);
});

test('FedProx sends mu to every site; FedAvg sends 0', () => {
  const prox = createStrategy(StrategyConfigSchema.parse({ name: 'fedprox', mu: 0.05 }));
  assert.deepEqual([...prox.configureRound(1, ['a', 'b'], base).values()].map((i) => i.mu), [0.05, 0.05]);
  const avg = createStrategy({ name: 'fedavg' });
  assert.equal(avg.configureRound(1, ['a'], { ...base, mu: 0.3 }).get('a')!.mu, 0);
});

test('FedAdam steps toward the average and its state round-trips', () => {
  const global: TensorList = [{ name: 'w', shape: [2, 2], data: new Float32Array(4) }, { name: 'b', shape: [1], data: new Float32Array(1) }];
  const s1 = new FedOpt('fedadam', { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  const updates = [upd('a', 1, [1, 1, 1, 1], 1)];
  const next = step(s1, 1, updates, global);
  assert.ok(next[0].data.every((v) => v > 0 && v <= 0.1 + 1e-6));
  const s2 = new FedOpt('fedadam', { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  s2.importState(s1.exportState()!);
  assert.deepEqual(step(s2, 2, updates, next).map((t) => [...t.data]), step(s1, 2, updates, next).map((t) => [...t.data]));
  const yogi = createStrategy(StrategyConfigSchema.parse({ name: 'fedyogi' }));
  assert.ok(step(yogi, 1, updates, global)[0].data[0] > 0);
});

test('FedAvgM: velocity v = beta v + (average - global), global moves by eta v; the velocity survives a checkpoint', () => {
  const strategy = createStrategy(StrategyConfigSchema.parse({ name: 'fedavgm', eta: 1, beta: 0.5 }));
  const zero: TensorList = like;
  // Round 1: the average is +1 everywhere -> v = 1, global = 1.
  const first = step(strategy, 1, [upd('a', 1, [1, 1, 1, 1], 1)], zero);
  assert.deepEqual([...first[0].data], [1, 1, 1, 1]);
  // Round 2: the average moves +1 again -> v = 0.5 * 1 + 1 = 1.5, global = 2.5.
  const restored = createStrategy(StrategyConfigSchema.parse({ name: 'fedavgm', eta: 1, beta: 0.5 }));
  restored.importState(strategy.exportState()!);
  const second = step(restored, 2, [upd('a', 1, [2, 2, 2, 2], 2)], first);
  assert.deepEqual([...second[0].data], [2.5, 2.5, 2.5, 2.5]);
  assert.equal(restored.configureRound(2, ['a'], { ...base, mu: 0.3 }).get('a')?.mu, 0, 'no proximal term');
});

test('FedAdam refuses a step whose moments would overflow and keeps its previous state', () => {
  const adam = createStrategy(StrategyConfigSchema.parse({ name: 'fedadam' }));
  const first = step(adam, 1, [upd('a', 1, [0.1, 0.1, 0.1, 0.1], 0.1)], like);
  const before = adam.exportState()!.map((part) => part.map((t) => [...t.data]));
  assert.throws(() => step(adam, 2, [upd('a', 1, [1e21, 0, 0, 0], 0)], first), /overflows at w\[0\].*kept as it was/);
  assert.deepEqual(adam.exportState()!.map((part) => part.map((t) => [...t.data])), before);
  const infState = adam.exportState()!.map((part) => part.map((t) => ({ ...t, data: t.data.map(() => Infinity) })));
  assert.throws(() => adam.importState(infState), /NaN or Infinity/);
});

test('FedAvgM refuses a step whose velocity would overflow and keeps its previous velocity', () => {
  const avgm = createStrategy(StrategyConfigSchema.parse({ name: 'fedavgm', eta: 1, beta: 0.5 }));
  const first = step(avgm, 1, [upd('a', 1, [0.1, 0.1, 0.1, 0.1], 0.1)], like);
  const before = avgm.exportState()!.map((part) => part.map((t) => [...t.data]));
  // delta = 3e38 - (-3e38) does not fit in float32: the new velocity would be Infinity.
  const far: TensorList = [{ ...first[0], data: Float32Array.of(-3e38, 0, 0, 0) }, first[1]];
  assert.throws(() => step(avgm, 2, [upd('a', 1, [3e38, 0, 0, 0], 0)], far), /overflows at w\[0\].*kept as it was/);
  assert.deepEqual(avgm.exportState()!.map((part) => part.map((t) => [...t.data])), before);
  const nanState = avgm.exportState()!.map((part) => part.map((t) => ({ ...t, data: t.data.map(() => NaN) })));
  assert.throws(() => avgm.importState(nanState), /NaN or Infinity/);
});

test('bounding caps an unregistered site at the median case count and clips updates beyond 3x the lower-median norm', () => {
  const global: TensorList = [{ name: 'w', shape: [2, 2], data: new Float32Array(4) }, { name: 'b', shape: [1], data: Float32Array.of(100) }];
  const updates = [
    { ...upd('a', 2, [1, 0, 0, 0], 100), registeredCases: 2 },
    { ...upd('b', 2, [0, 1, 0, 0], 100), registeredCases: 2 },
    { ...upd('c', 1e12, [0, 0, 30, 40], 100), registeredCases: null },
  ];
  const { reports, bound } = planBounds(updates.map((u) => ({ ...u, norm: l2Distance(u.weights, global) })), l2Distance(global));
  assert.equal(bound, 3);
  assert.deepEqual(reports.map((r) => r.weight), [2, 2, 2]);
  assert.deepEqual(reports.map((r) => r.clippedTo), [null, null, 3]);
  const clipped = updates.map((u, k) => u.weights.map((t, i) => {
    const data = new Float32Array(t.data);
    clipInPlace(global[i].data, data, reports[k]);
    return { ...t, data };
  }));
  assert.deepEqual([...clipped[0][0].data], [1, 0, 0, 0], 'within the bound: unchanged');
  assert.ok(Math.abs(l2Distance(clipped[2], global) - 3) < 1e-5);
  assert.deepEqual([...clipped[2][0].data].map((v) => Math.round(v * 1e5) / 1e5), [0, 0, 1.8, 2.4]);
  assert.equal(lowerMedian([5, 1, 4, 2]), 2);
  // The ceiling: a lone site is clipped to maxRelativeNorm x ||global|| = 5 x 100.
  assert.equal(planBounds([{ site: 'solo', numCases: 1, registeredCases: 1, norm: 1e6 }], 100).bound, 500);
});

test('median and trimmed mean in blocks of any size equal the one-block result exactly', () => {
  let seed = 3;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  const shape = [7, 11];
  const global: TensorList = [{ name: 'w', shape, data: new Float32Array(77) }, { name: 'b', shape: [5], data: new Float32Array(5) }];
  const updates: ClientUpdate[] = Array.from({ length: 6 }, (_, k) => ({
    site: `s${k}`, numCases: 1 + k,
    weights: [{ name: 'w', shape, data: Float32Array.from({ length: 77 }, random) }, { name: 'b', shape: [5], data: Float32Array.from({ length: 5 }, random) }],
  }));
  const whole = coordinateMedian(updates, global, 1000).map((t) => [...t.data]);
  for (const block of [1, 3, 8, 76]) assert.deepEqual(coordinateMedian(updates, global, block).map((t) => [...t.data]), whole, `block ${block}`);
  const trimmed = (block: number) => aggregateInMemory(createStrategy({ name: 'trimmed-mean', beta: 0.2 }), 1, updates, global, block).map((t) => [...t.data]);
  assert.deepEqual(trimmed(4), trimmed(1000));
});
