import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { stockStepKernel } from '../../core/tf/step-kernels.js';

type Shape5 = [number, number, number, number, number];

/** Values in {-2..2} after ReLU: many exact ties inside pooling windows, as in a real network. */
function tiedInput(shape: Shape5, seed: number): tf.Tensor5D {
  return tf.tidy(() => tf.relu(tf.round(tf.randomUniform(shape, -2, 2, 'float32', seed)))) as tf.Tensor5D;
}

function poolAndGrad(x: tf.Tensor5D, dySeed: number): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const y = tf.maxPool3d(x, 2, 2, 'valid');
    const dy = tf.randomUniform(y.shape, -1, 1, 'float32', dySeed);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool3d(a as tf.Tensor5D, 2, 2, 'valid'), dy)))(x);
    return [y.dataSync() as Float32Array, dx.dataSync() as Float32Array];
  });
}

const SHAPES: Shape5[] = [[1, 4, 4, 4, 3], [2, 6, 4, 8, 5], [1, 5, 7, 3, 2], [1, 2, 2, 2, 1]];

function withStockPooling<T>(backend: string, run: () => T): T {
  const replaced = [tf.MaxPool3D, tf.MaxPool3DGrad].map((name) => tf.getKernel(name, backend)!);
  for (const config of replaced) {
    tf.unregisterKernel(config.kernelName, backend);
    tf.registerKernel(stockStepKernel(backend, config.kernelName)!);
  }
  try {
    return run();
  } finally {
    for (const config of replaced) {
      tf.unregisterKernel(config.kernelName, backend);
      tf.registerKernel(config);
    }
  }
}

test('2x2x2 max-pooling and its gradient equal TF.js reference cpu kernels, ties included, on cpu and wasm', async () => {
  await initBackend('cpu');
  const reference = withStockPooling('cpu', () => SHAPES.map((s, i) => poolAndGrad(tiedInput(s, i), 50 + i)));
  for (const backend of ['cpu', 'wasm'] as const) {
    await initBackend(backend);
    SHAPES.forEach((s, i) => {
      const [y, dx] = poolAndGrad(tiedInput(s, i), 50 + i);
      assert.deepEqual(y, reference[i][0], `${backend} forward ${s}`);
      assert.deepEqual(dx, reference[i][1], `${backend} gradient ${s}`);
    });
  }
});

test('other pooling geometries still reach the stock kernels', async () => {
  await initBackend('cpu');
  const x = tf.randomUniform([1, 5, 5, 5, 2], -1, 1, 'float32', 9) as tf.Tensor5D;
  const reference = withStockPooling('cpu', () => tf.maxPool3d(x, 3, 1, 'same').dataSync());
  assert.deepEqual(tf.maxPool3d(x, 3, 1, 'same').dataSync(), reference);
});

test('wasm Identity and same-dtype Cast share the buffer and keep it alive until both are disposed', async () => {
  await initBackend('wasm');
  const x = tf.tensor([1, 2, 3, 4], [2, 2]);
  const copy = tf.clone(x);
  const cast = tf.cast(x, 'float32');
  const ints = tf.cast(x, 'int32');
  x.dispose();
  assert.deepEqual(Array.from(copy.dataSync()), [1, 2, 3, 4]);
  copy.dispose();
  assert.deepEqual(Array.from(cast.dataSync()), [1, 2, 3, 4]);
  assert.equal(ints.dtype, 'int32');
  assert.deepEqual(Array.from(ints.dataSync()), [1, 2, 3, 4]);
  const before = tf.memory().numBytes;
  cast.dispose();
  ints.dispose();
  assert.ok(tf.memory().numBytes < before);
});
