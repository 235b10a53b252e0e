import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { mergePadAxes, mergeReductionAxes, mergeTransposeAxes } from '../../core/tf/webgpu-kernels.js';
import { on, values } from './test-backends.js';

test('axis merging keeps the transpose, reduction and padding it rewrites', () => {
  assert.deepEqual(mergeTransposeAxes([2, 3, 4, 5, 6], [4, 0, 1, 2, 3]), { shape: [120, 6], perm: [1, 0] });
  assert.deepEqual(mergeTransposeAxes([2, 3, 4, 5, 6], [0, 2, 1, 3, 4]), { shape: [2, 3, 4, 30], perm: [0, 2, 1, 3] });
  assert.deepEqual(mergeReductionAxes([2, 3, 4, 5, 6], [0, 1, 2, 3]), { shape: [120, 6], axes: [0] });
  assert.deepEqual(mergeReductionAxes([2, 3, 4, 5, 6], [1, 3]), { shape: [2, 3, 4, 5, 6], axes: [1, 3] });
  assert.deepEqual(mergePadAxes([2, 3, 4, 5, 6], [[0, 0], [1, 2], [0, 0], [0, 0], [0, 0]]), { shape: [2, 360], paddings: [[0, 0], [120, 240]] });
});

/** The rank-5 ops of a U-Net training step that tfjs-backend-webgpu 4.22 cannot compile, each with its fix. */
const OPS: [string, (x: tf.Tensor5D) => tf.Tensor][] = [
  ['bias add', (x) => tf.add(x, tf.tensor1d([0.5, -1, 2]))],
  ['bias as first operand', (x) => tf.sub(tf.tensor1d([0.5, -1, 2]), x)],
  ['channel-last to channel-first transpose', (x) => tf.transpose(x, [4, 0, 1, 2, 3])],
  ['swap of two inner axes', (x) => tf.transpose(x, [0, 2, 1, 3, 4])],
  ['sum over every axis but the channels', (x) => tf.sum(x, [0, 1, 2, 3])],
  ['mean over two separate axes, keepDims', (x) => tf.mean(x, [1, 3], true)],
  ['max over the channels', (x) => tf.max(x, -1)],
  ['argMax over the channels', (x) => tf.argMax(x, -1)],
  ['pad of two axes', (x) => tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 2], [0, 0]], 0.25)],
];

test('webgpu: rank-5 binary ops, transposes, reductions and pads equal the cpu backend', on('webgpu'), async () => {
  const run = async (backend: 'cpu' | 'webgpu') => {
    await initBackend(backend);
    const x = tf.randomUniform([2, 3, 4, 2, 3], -1, 1, 'float32', 7) as tf.Tensor5D;
    const results = [];
    for (const [, op] of OPS) {
      const y = op(x);
      results.push({ shape: y.shape, data: await values(y) });
      y.dispose();
    }
    x.dispose();
    return results;
  };
  const cpu = await run('cpu');
  const gpu = await run('webgpu');
  await initBackend('cpu');
  OPS.forEach(([name], i) => {
    assert.deepEqual(gpu[i].shape, cpu[i].shape, name);
    const worst = Math.max(...cpu[i].data.map((v, j) => Math.abs(v - gpu[i].data[j])));
    assert.ok(worst < 1e-6, `${name}: max |cpu - webgpu| ${worst}`);
  });
});
