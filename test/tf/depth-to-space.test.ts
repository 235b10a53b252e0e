import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { depthToSpace3d, depthToSpaceByTranspose, spaceToDepth3d, spaceToDepthByTranspose } from '../../core/tf/depth-to-space.js';
import { on, TEST_BACKENDS, values } from './test-backends.js';

const SHAPES: [number, number, number, number, number][] = [[1, 2, 3, 4, 8], [2, 3, 2, 2, 16], [1, 1, 1, 1, 24]];

for (const backend of TEST_BACKENDS) {
  test(`${backend}: depth-to-space and space-to-depth equal the reshape/transpose composition, invert each other, and are each other's gradient`, on(backend), async () => {
    await initBackend(backend);
    for (const [i, shape] of SHAPES.entries()) {
      const before = tf.memory().numTensors;
      const x = tf.randomUniform(shape, -1, 1, 'float32', 10 + i) as tf.Tensor5D;
      const up = depthToSpace3d(x);
      const reference = depthToSpaceByTranspose(x);
      assert.deepEqual(up.shape, reference.shape);
      assert.deepEqual(await values(up), await values(reference), `depth-to-space of [${shape}]`);
      const down = spaceToDepth3d(up);
      assert.deepEqual(await values(down), await values(x), 'space-to-depth inverts it');
      const downRef = spaceToDepthByTranspose(up);
      assert.deepEqual(await values(down), await values(downRef));
      // A permutation's gradient is its inverse applied to the upstream gradient.
      const dy = tf.randomUniform(up.shape, -1, 1, 'float32', 20 + i) as tf.Tensor5D;
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(depthToSpace3d(t as tf.Tensor5D), dy)))(x);
      const dxRef = spaceToDepthByTranspose(dy);
      assert.deepEqual(await values(dx), await values(dxRef), 'gradient of depth-to-space');
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(spaceToDepth3d(t as tf.Tensor5D), x)))(up);
      const gRef = depthToSpaceByTranspose(x);
      assert.deepEqual(await values(g), await values(gRef), 'gradient of space-to-depth');
      tf.dispose([x, up, reference, down, downRef, dy, dx, dxRef, g, gRef]);
      assert.equal(tf.memory().numTensors, before, 'nothing left behind');
    }
  });
}
