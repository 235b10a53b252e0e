/**
 * The ops that bound a training step's memory: seeded dropout (mask regenerated, never stored; its
 * fusion into the next convolution is tested in fused-conv.test.ts) and checkpointing (temporaries
 * recomputed in the backward pass). Same values and gradients as the plain computation on every
 * backend, and no tensor left behind.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { checkpointed } from '../../core/tf/checkpoint.js';
import { applyDropoutMask, dropoutRaw } from '../../core/tf/dropout.js';
import { on, TEST_BACKENDS, values } from './test-backends.js';

test('dropout keeps each voxel with probability 1 - rate, scales kept ones by 1/(1 - rate), and repeats per seed', () => {
  const n = 200_000;
  const x = new Float32Array(n).fill(1);
  for (const rate of [0.1, 0.3]) {
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    const c = new Float32Array(n);
    dropoutRaw(x, rate, 7, a);
    dropoutRaw(x, rate, 7, b);
    dropoutRaw(x, rate, 8, c);
    assert.deepEqual(a, b, 'same seed, same mask');
    const kept = a.filter((v) => v !== 0);
    // Binomial(n, 1 - rate): 5 standard deviations.
    const sd = Math.sqrt(n * rate * (1 - rate));
    assert.ok(Math.abs(kept.length - n * (1 - rate)) < 5 * sd, `kept ${kept.length} of ${n} at rate ${rate}`);
    assert.ok(kept.every((v) => v === Math.fround(1 / (1 - rate))));
    // Another seed: masks agree only by chance, on about (1-r)^2 + r^2 of the voxels.
    const agree = a.reduce((k, v, i) => k + ((v === 0) === (c[i] === 0) ? 1 : 0), 0) / n;
    assert.ok(Math.abs(agree - ((1 - rate) ** 2 + rate ** 2)) < 0.01, `masks of two seeds agree on ${agree}`);
  }
});

for (const backend of TEST_BACKENDS) {
  test(`${backend}: the dropout kernel drops the raw loop's voxels, repeats per seed, and leaves only its output`, on(backend), async () => {
    await initBackend(backend);
    const before = tf.memory().numTensors;
    const x = tf.randomNormal([1, 4, 6, 6, 3], 0, 1, 'float32', 11);
    const spec = { rate: 0.3, seed: 99 };
    const y = applyDropoutMask(x, spec);
    const again = applyDropoutMask(x, spec);
    const [yv, av, xv] = await Promise.all([y, again, x].map(values));
    assert.deepEqual(yv, av);
    // Every backend drops the same voxels: the values are the raw loop's, exactly.
    const expected = new Float32Array(xv.length);
    dropoutRaw(xv, spec.rate, spec.seed, expected);
    assert.ok(expected.every((v, i) => v === yv[i]), 'same mask and scale as the raw loop');
    const dropped = yv.filter((v) => v === 0).length;
    assert.ok(dropped > 0.15 * yv.length && dropped < 0.45 * yv.length, `dropped ${dropped} of ${yv.length}`);
    for (const t of [x, y, again]) t.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test(`${backend}: a checkpointed function has the plain function's value and gradients, with constants, inside variableGrads`, on(backend), async () => {
    await initBackend(backend);
    const before = tf.memory().numTensors;
    const w = tf.tidy(() => tf.variable(tf.randomNormal([3, 4], 0, 1, 'float32', 21)));
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 22);
    const label = tf.randomUniform([5, 4], 0, 1, 'float32', 23);
    const head = (z: tf.Tensor, y: tf.Tensor) => tf.mean(tf.mul(tf.square(tf.sub(tf.softmax(z), y)), tf.exp(z)));
    const plain = tf.variableGrads(() => head(tf.matMul(x, w), label) as tf.Scalar, [w]);
    const ckpt = tf.variableGrads(() => checkpointed(([z], [y]) => head(z, y) as tf.Scalar)([tf.matMul(x, w)], [label]), [w]);
    assert.deepEqual(await values(ckpt.value), await values(plain.value));
    const [gp, gc] = await Promise.all([values(plain.grads[w.name]), values(ckpt.grads[w.name])]);
    for (let i = 0; i < gp.length; i++) assert.ok(Math.abs(gp[i] - gc[i]) <= 1e-6 * Math.max(1, Math.abs(gp[i])), `grad[${i}]: ${gp[i]} vs ${gc[i]}`);
    for (const t of [plain.value, ckpt.value, plain.grads[w.name], ckpt.grads[w.name], x, label, w]) t.dispose();
    assert.equal(tf.memory().numTensors, before, 'the nested tape and the saved inputs are released');
  });
}
