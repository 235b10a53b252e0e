import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { upsample3d, upsample3dByTiling } from '../../core/tf/upsample.js';
import { checkGradients } from './finite-difference.js';
import { on, TEST_BACKENDS, values } from './test-backends.js';

// Justified in finite-difference.ts; the same on webgpu (SwiftShader computes in float32 like the CPU
// backends and only the summation order differs).
const TOLERANCE = 1e-3;

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

for (const backend of TEST_BACKENDS) {
  test(`${backend}: upsample3d repeats every voxel factor^3 times`, on(backend), async () => {
    await initBackend(backend);
    const x = seeded([2, 2, 3, 2, 3], 1) as tf.Tensor5D;
    for (const factor of [2, 3]) {
      const y = upsample3d(x, factor);
      assert.deepEqual(y.shape, [2, 2 * factor, 3 * factor, 2 * factor, 3]);
      const xv = tf.buffer(x.shape, 'float32', await values(x));
      const yv = tf.buffer(y.shape, 'float32', await values(y));
      for (let n = 0; n < 2; n++)
        for (let d = 0; d < 2 * factor; d++)
          for (let h = 0; h < 3 * factor; h++)
            for (let w = 0; w < 2 * factor; w++)
              for (let c = 0; c < 3; c++) {
                assert.equal(yv.get(n, d, h, w, c), xv.get(n, Math.floor(d / factor), Math.floor(h / factor), Math.floor(w / factor), c));
              }
    }
  });

  test(`${backend}: upsample3d gradient matches finite differences (raw kernels and the tiling path)`, on(backend), async () => {
    await initBackend(backend);
    for (const [name, op] of [['kernel', upsample3d], ['tiling', upsample3dByTiling]] as const) {
      for (const factor of [2, 3]) {
        const x = seeded([2, 2, 2, 3, 2], 2);
        const check = await checkGradients((a) => op(a as tf.Tensor5D, factor), [x]);
        assert.ok(check.relativeError < TOLERANCE, `${name} factor ${factor}: relative error ${check.relativeError}`);
        assert.equal(check.checked, 48);
      }
    }
    const x = seeded([1, 3, 2, 4, 5], 3) as tf.Tensor5D;
    assert.deepEqual(await values(upsample3d(x, 2)), await values(upsample3dByTiling(x, 2)));
  });

  test(`${backend}: conv3dTranspose gradients (dy and filter) match finite differences`, on(backend), async () => {
    await initBackend(backend);
    const cases: { xShape: number[]; filter: number[]; out: number[]; stride: number; pad: 'same' | 'valid' }[] = [
      { xShape: [1, 2, 2, 2, 3], filter: [2, 2, 2, 2, 3], out: [1, 4, 4, 4, 2], stride: 2, pad: 'same' },
      { xShape: [2, 2, 3, 2, 2], filter: [3, 3, 3, 2, 2], out: [2, 4, 6, 4, 2], stride: 2, pad: 'same' },
      { xShape: [1, 3, 2, 2, 2], filter: [3, 2, 3, 3, 2], out: [1, 5, 3, 4, 3], stride: 1, pad: 'valid' },
    ];
    for (const [i, c] of cases.entries()) {
      const x = seeded(c.xShape, 10 + i);
      const w = seeded(c.filter, 20 + i);
      const f = (a: tf.Tensor, k: tf.Tensor) =>
        tf.conv3dTranspose(a as tf.Tensor5D, k as tf.Tensor5D, c.out as [number, number, number, number, number], c.stride, c.pad);
      const check = await checkGradients(f, [x, w]);
      assert.ok(check.relativeError < TOLERANCE, `case ${i}: relative error ${check.relativeError}`);
    }
  });

  test(`${backend}: rank-5 ops the U-Nets use have gradients matching finite differences`, on(backend), async () => {
    await initBackend(backend);
    const x = seeded([1, 4, 4, 2, 2], 30);
    const y = seeded([1, 4, 4, 2, 1], 31);
    const k = seeded([3, 3, 3, 2, 2], 32);
    const ops: [string, (...xs: tf.Tensor[]) => tf.Tensor, tf.Tensor[]][] = [
      ['maxPool3d', (a) => tf.maxPool3d(a as tf.Tensor5D, 2, 2, 'valid'), [x]],
      ['avgPool3d', (a) => tf.avgPool3d(a as tf.Tensor5D, 2, 2, 'valid'), [x]],
      ['concat axis 4', (a, b) => tf.concat([a, b], 4), [x, y]],
      ['sigmoid', (a) => tf.sigmoid(a), [x]],
      ['relu', (a) => tf.relu(a), [x]],
      ['softmax over channels', (a) => tf.softmax(a, -1), [x]],
      ['conv3d same', (a, b) => tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, 1, 'same'), [x, k]],
      ['conv3d stride 2', (a, b) => tf.conv3d(a as tf.Tensor5D, b as tf.Tensor5D, 2, 'same'), [x, k]],
    ];
    for (const [name, f, inputs] of ops) {
      // Small step for the piecewise-linear ops, so no probe crosses a max/relu switch point.
      const epsilon = name === 'maxPool3d' || name === 'relu' ? 1e-3 : 1e-2;
      const check = await checkGradients(f, inputs, { epsilon });
      const tolerance = epsilon < 1e-2 ? 10 * TOLERANCE : TOLERANCE;
      assert.ok(check.relativeError < tolerance, `${name}: relative error ${check.relativeError}`);
    }
  });
}

test('initBackend is idempotent and rejects unknown backends', async () => {
  const a = await initBackend('cpu');
  const b = await initBackend('cpu');
  assert.equal(a, b);
  assert.equal(a.name, 'cpu');
  await assert.rejects(initBackend('gpu-please' as never), /unknown TensorFlow.js backend 'gpu-please'/);
  const wasm = await initBackend('wasm');
  assert.equal(wasm.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});
