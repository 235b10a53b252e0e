import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { installNativeMovementKernels, loadNativeAddon, nativeEngineStatus, uninstallNativeMovementKernels } from '../../core/tf/native-engine.js';

// Reference: TF.js's stock cpu Tile/Slice in this same process (imported directly, not via backend.ts,
// so nothing FedSeg registers is in the way until the test installs the native kernels itself).
const addon = loadNativeAddon();
const skipReason = addon ? false : `native addon unavailable: ${nativeEngineStatus()}`;
if (skipReason) console.log(`# skipping native movement tests: ${skipReason}`);

function randomShape(rank: number, max: number): number[] {
  return Array.from({ length: rank }, () => 1 + Math.floor(Math.random() * max));
}

describe('native Tile and Slice vs TF.js stock cpu kernels', { skip: skipReason }, () => {
  it('are bit-identical on random shapes of rank 1..6', async () => {
    await tf.setBackend('cpu');
    for (let trial = 0; trial < 40; trial++) {
      const rank = 1 + (trial % 6);
      const x = tf.randomNormal(randomShape(rank, rank > 4 ? 4 : 6));
      const reps = randomShape(rank, 3);
      const begin = x.shape.map((d) => Math.floor(Math.random() * d));
      const size = x.shape.map((d, i) => (Math.random() < 0.3 ? -1 : Math.floor(Math.random() * (d - begin[i] + 1))));
      uninstallNativeMovementKernels('cpu');
      const tiledRef = tf.tile(x, reps);
      const slicedRef = tf.slice(x, begin, size);
      assert.deepEqual(installNativeMovementKernels('cpu'), [tf.Tile, tf.Slice]);
      const tiled = tf.tile(x, reps);
      const sliced = tf.slice(x, begin, size);
      assert.deepEqual(tiled.shape, tiledRef.shape);
      assert.deepEqual(tiled.dataSync(), tiledRef.dataSync(), `tile [${x.shape}] x [${reps}]`);
      assert.deepEqual(sliced.shape, slicedRef.shape);
      assert.deepEqual(sliced.dataSync(), slicedRef.dataSync(), `slice [${x.shape}] at [${begin}] size [${size}]`);
      tf.dispose([x, tiledRef, slicedRef, tiled, sliced]);
    }
    uninstallNativeMovementKernels('cpu');
  });

  it('leave non-float32 tensors to the stock kernels', async () => {
    await tf.setBackend('cpu');
    installNativeMovementKernels('cpu');
    try {
      const x = tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32');
      assert.deepEqual(tf.tile(x, [1, 2]).arraySync(), [[1, 2, 1, 2], [3, 4, 3, 4]]);
      assert.deepEqual(tf.slice(x, [1, 0], [1, 2]).arraySync(), [[3, 4]]);
    } finally {
      uninstallNativeMovementKernels('cpu');
    }
  });
});
