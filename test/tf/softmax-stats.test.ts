/**
 * The loss statistics kernels (core/tf/softmax-stats.ts) against the same vector composed from stock
 * TF.js ops: value and gradient, for one-hot and soft labels, 2 and 4 classes, logits large enough
 * that a class's probability underflows (where the focal term's 1/p must cancel).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { softmaxStats, softmaxStatsFromOps, statsLength } from '../../core/tf/softmax-stats.js';
import { on, TEST_BACKENDS, values } from './test-backends.js';

function closeTo(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(Number.isFinite(actual[i]) && err <= tol * (1 + Math.abs(expected[i])), `${what} [${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

const CASES = [
  { shape: [1, 3, 4, 5, 4], scale: 3, soft: false, gamma: 2 },
  { shape: [2, 2, 3, 2, 2], scale: 30, soft: false, gamma: 2 },
  { shape: [1, 2, 2, 3, 4], scale: 2, soft: true, gamma: 1.5 },
];

for (const backend of TEST_BACKENDS) {
  test(`${backend}: the loss statistics and their gradient equal the stock-op composition`, on(backend), async () => {
    await initBackend(backend);
    // On wasm and cpu the kernels run (elsewhere softmaxStats composes stock ops itself).
    if (backend !== 'webgpu') assert.ok(tf.getKernel('FedSegSoftmaxStats', backend), `the statistics kernel is registered on ${backend}`);
    for (const [i, { shape, scale, soft, gamma }] of CASES.entries()) {
      const before = tf.memory().numTensors;
      const classes = shape[shape.length - 1];
      const z = tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 40 + i), scale));
      const y = tf.tidy(() => soft
        ? tf.softmax(tf.randomNormal(shape, 0, 1, 'float32', 50 + i))
        : tf.cast(tf.oneHot(tf.randomUniformInt(shape.slice(0, -1), 0, classes, 60 + i), classes), 'float32'));
      const stats = softmaxStats(z, y, gamma);
      const reference = softmaxStatsFromOps(z, y, gamma);
      assert.deepEqual(stats.shape, [statsLength(classes)]);
      closeTo(await values(stats), await values(reference), 1e-5, `statistics, case ${i}`);
      // An arbitrary upstream gradient on every statistic, so each term's chain rule is checked.
      const d = tf.randomNormal([statsLength(classes)], 0, 1, 'float32', 70 + i);
      const dz = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(softmaxStats(t, y, gamma), d)))(z);
      const dzRef = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(softmaxStatsFromOps(t, y, gamma), d)))(z);
      closeTo(await values(dz), await values(dzRef), 1e-4, `gradient, case ${i}`);
      tf.dispose([z, y, stats, reference, d, dz, dzRef]);
      assert.equal(tf.memory().numTensors, before, 'nothing left behind');
    }
  });
}
