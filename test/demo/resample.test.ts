import assert from 'node:assert/strict';
import { test } from 'node:test';
import { downsampleClasses, upsampleArgmax } from '../../demo/resample.js';

test('downsampleClasses takes the block majority and breaks ties toward tumour (ET, NCR, ED)', () => {
  const majority = downsampleClasses({ shape: [2, 2, 2], data: Uint8Array.from([2, 2, 2, 0, 0, 1, 1, 2]) }, 2);
  assert.deepEqual([...majority.data], [2]);
  const tie = downsampleClasses({ shape: [2, 2, 2], data: Uint8Array.from([0, 0, 0, 0, 3, 3, 3, 3]) }, 2);
  assert.deepEqual([...tie.data], [3]);
  const tieCoreEdema = downsampleClasses({ shape: [2, 2, 2], data: Uint8Array.from([1, 1, 1, 2, 2, 2, 0, 0]) }, 2);
  assert.deepEqual([...tieCoreEdema.data], [1]);
  const layout = downsampleClasses({ shape: [2, 4, 2], data: Uint8Array.from([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]) }, 2);
  assert.deepEqual(layout.shape, [1, 2, 1]);
  assert.deepEqual([...layout.data], [1, 0]);
});

test('upsampleArgmax: factor 1 is the plain argmax, and a trilinear factor 2 follows the nearer source voxel', () => {
  // Two voxels along k: class 1 wins on the first, class 2 on the second.
  const probs = Float32Array.from([0.1, 0.8, 0.1, 0, 0.1, 0.1, 0.8, 0]);
  assert.deepEqual([...upsampleArgmax(probs, [1, 1, 2], 4, 1).data], [1, 2]);
  const up = upsampleArgmax(probs, [1, 1, 2], 4, 2);
  assert.deepEqual(up.shape, [2, 2, 4]);
  // Along k the outputs sit at source coordinates -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) assert.deepEqual([...up.data.subarray((i * 2 + j) * 4, (i * 2 + j) * 4 + 4)], [1, 1, 2, 2]);
});
