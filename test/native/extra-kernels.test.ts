import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { installNativeKernels, loadNativeAddon, nativeEngineStatus, uninstallNativeKernels } from '../../core/tf/native-engine.js';

// Reference: TF.js's stock cpu kernels in this same process (tfjs imported directly, not via
// backend.ts, so nothing FedSeg registers is in the way until a test installs the native kernels).
const addon = loadNativeAddon();
const skipReason = addon ? false : `native addon unavailable: ${nativeEngineStatus()}`;
if (skipReason) console.log(`# skipping native extra-kernel tests: ${skipReason}`);

const int = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** Runs `make` with the stock kernels, then with the native ones; returns both results' data. */
function stockThenNative(make: () => tf.Tensor): [tf.Tensor, tf.Tensor] {
  uninstallNativeKernels('cpu');
  const stock = make();
  installNativeKernels('cpu');
  const native = make();
  uninstallNativeKernels('cpu');
  return [stock, native];
}

function assertSame(stock: tf.Tensor, native: tf.Tensor, what: string): void {
  assert.deepEqual(native.shape, stock.shape, what);
  assert.deepEqual(native.dataSync(), stock.dataSync(), what);
}

describe('native Tile, Slice, 3D max-pooling and Sum vs TF.js stock kernels', { skip: skipReason }, () => {
  it('installs on cpu and reports what it replaced', async () => {
    await tf.setBackend('cpu');
    assert.deepEqual(installNativeKernels('cpu'), [tf.Tile, tf.Slice, tf.MaxPool3D, tf.MaxPool3DGrad, tf.Sum]);
    assert.deepEqual(installNativeKernels('webgl'), []);
    uninstallNativeKernels('cpu');
  });

  it('Tile and Slice are bit-identical on random shapes of rank 1..6', async () => {
    await tf.setBackend('cpu');
    for (let trial = 0; trial < 40; trial++) {
      const rank = 1 + (trial % 6);
      const x = tf.randomNormal(Array.from({ length: rank }, () => int(1, rank > 4 ? 4 : 6)));
      const reps = x.shape.map(() => int(1, 3));
      const begin = x.shape.map((d) => int(0, d - 1));
      const size = x.shape.map((d, i) => (Math.random() < 0.3 ? -1 : int(0, d - begin[i])));
      assertSame(...stockThenNative(() => tf.tile(x, reps)), `tile [${x.shape}] x [${reps}]`);
      assertSame(...stockThenNative(() => tf.slice(x, begin, size)), `slice [${x.shape}] at [${begin}] size [${size}]`);
    }
  });

  it('MaxPool3D and its gradient are bit-identical, ties included', async () => {
    await tf.setBackend('cpu');
    for (let trial = 0; trial < 30; trial++) {
      const f = int(1, 3);
      const filter: [number, number, number] = [int(1, 3), f, f];
      const strides: [number, number, number] = [int(1, 3), int(1, 3), int(1, 3)];
      const pad = Math.random() < 0.5 ? 'same' : 'valid';
      const shape = [int(1, 2), filter[0] + int(0, 5), f + int(0, 5), f + int(0, 5), int(1, 9)];
      // Rounded ReLU'd values: many equal maxima, so the tie rule (last maximum wins) is exercised.
      const x = tf.relu(tf.round(tf.randomUniform(shape, -2, 3))) as tf.Tensor5D;
      const [yStock, yNative] = stockThenNative(() => tf.maxPool3d(x, filter, strides, pad));
      const what = `maxPool3d [${shape}] f[${filter}] s[${strides}] ${pad}`;
      assertSame(yStock, yNative, what);
      const dy = tf.randomNormal(yStock.shape);
      const attrs = { filterSize: filter, strides, pad };
      const grad = () => tf.engine().runKernel(tf.MaxPool3DGrad, { dy, input: x, output: yStock }, attrs) as tf.Tensor;
      const [dxStock, dxNative] = stockThenNative(grad);
      // Overlapping windows add in a different order than TF.js: equal to float32 rounding, not bits.
      const tol = strides.some((s, i) => s < filter[i]) ? 1e-6 : 0;
      const a = dxNative.dataSync();
      const b = dxStock.dataSync();
      for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what} grad @${i}`);
    }
  });

  it('Sum over leading axes matches TF.js to float32 rounding; other sums keep the stock kernel', async () => {
    await tf.setBackend('cpu');
    for (let trial = 0; trial < 20; trial++) {
      const rank = 1 + (trial % 5);
      const x = tf.randomUniform(Array.from({ length: rank }, () => int(1, rank > 3 ? 12 : 40)), -1, 1);
      const lead = int(1, rank);
      const axes = Array.from({ length: lead }, (_, i) => i);
      const keepDims = trial % 2 === 0;
      const [stock, native] = stockThenNative(() => tf.sum(x, axes, keepDims));
      assert.deepEqual(native.shape, stock.shape);
      const a = native.dataSync();
      const b = stock.dataSync();
      const scale = Math.max(1, ...Array.from(b, Math.abs));
      for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * scale, `sum [${x.shape}] over ${lead} axes @${i}`);
    }
    // A bias gradient at U-Net size: 64^3 voxels x 16 channels.
    const big = tf.randomUniform([1, 64, 64, 64, 16], -1, 1);
    const [stock, native] = stockThenNative(() => tf.sum(big, [0, 1, 2, 3]));
    const exact = new Float64Array(16);
    big.dataSync().forEach((v, i) => (exact[i % 16] += v));
    const nativeErr = Math.max(...Array.from(native.dataSync(), (v, i) => Math.abs(v - exact[i])));
    const stockErr = Math.max(...Array.from(stock.dataSync(), (v, i) => Math.abs(v - exact[i])));
    assert.ok(nativeErr <= stockErr + 1e-6, `native error ${nativeErr} vs TF.js ${stockErr}`);
    // Trailing-axis sums are not bias gradients: they stay with TF.js (same values either way).
    assertSame(...stockThenNative(() => tf.sum(big, [4])), 'sum over the last axis');
  });

  it('on the wasm backend (heap views) agree with the cpu stock kernels', async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
    await tf.setBackend('cpu');
    const x = tf.relu(tf.round(tf.randomUniform([1, 6, 8, 10, 5], -2, 3))) as tf.Tensor5D;
    const dy = tf.randomNormal([1, 3, 4, 5, 5]);
    const ops = (): tf.Tensor[] => [
      tf.tile(x, [1, 2, 1, 1, 2]),
      tf.slice(x, [0, 1, 2, 3, 1], [1, 4, 5, 6, 3]),
      tf.maxPool3d(x, 2, 2, 'valid'),
      tf.engine().runKernel(tf.MaxPool3DGrad, { dy, input: x, output: dy }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor,
      tf.sum(x, [0, 1, 2, 3]),
    ];
    const expected = ops().map((t) => ({ shape: t.shape, data: Array.from(t.dataSync()) }));
    const xData = x.dataSync();
    const dyData = dy.dataSync();
    assert.ok(await tf.setBackend('wasm'));
    try {
      assert.ok(installNativeKernels('wasm').includes(tf.Slice));
      // Re-create the inputs on the wasm backend, then run the same ops through the native kernels.
      const xw = tf.tensor5d(xData, x.shape);
      const dyw = tf.tensor(dyData, dy.shape);
      const actual = [
        tf.tile(xw, [1, 2, 1, 1, 2]),
        tf.slice(xw, [0, 1, 2, 3, 1], [1, 4, 5, 6, 3]),
        tf.maxPool3d(xw, 2, 2, 'valid'),
        tf.engine().runKernel(tf.MaxPool3DGrad, { dy: dyw, input: xw, output: dyw }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor,
        tf.sum(xw, [0, 1, 2, 3]),
      ];
      actual.forEach((t, i) => {
        assert.deepEqual(t.shape, expected[i].shape, `op ${i}`);
        const got = Array.from(t.dataSync());
        got.forEach((v, k) => assert.ok(Math.abs(v - expected[i].data[k]) <= 1e-5 * (1 + Math.abs(v)), `op ${i} @${k}`));
      });
    } finally {
      uninstallNativeKernels('wasm');
      await tf.setBackend('cpu');
    }
  });

  it('leaves non-float32 tensors to the stock kernels', async () => {
    await tf.setBackend('cpu');
    installNativeKernels('cpu');
    try {
      const x = tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32');
      assert.deepEqual(tf.tile(x, [1, 2]).arraySync(), [[1, 2, 1, 2], [3, 4, 3, 4]]);
      assert.deepEqual(tf.slice(x, [1, 0], [1, 2]).arraySync(), [[3, 4]]);
    } finally {
      uninstallNativeKernels('cpu');
    }
  });
});
