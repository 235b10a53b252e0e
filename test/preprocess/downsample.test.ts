import assert from 'node:assert/strict';
import { test } from 'node:test';
import { averagePool, classIndex, createCaseTensor, downsampleCase, modePool, tensorIndex, upsampleArgmax, upsampleClasses } from '../../core/preprocess/index.js';
import type { PreprocessedCase } from '../../core/preprocess/index.js';

test('average pooling averages each 2x2x2 block per channel', () => {
  const tensor = createCaseTensor([4, 2, 2, 2]);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) {
    tensor.data[tensorIndex(tensor.shape, i, j, k, 0)] = i;
    tensor.data[tensorIndex(tensor.shape, i, j, k, 1)] = 1;
  }
  const pooled = averagePool(tensor, 2);
  assert.deepEqual(pooled.shape, [2, 1, 1, 2]);
  assert.deepEqual([...pooled.data], [0.5, 1, 2.5, 1]);
});

test('mode pooling keeps the most frequent class, ties to the higher class; upsampling restores the grid', () => {
  const data = new Uint8Array(8);
  data.set([0, 0, 0, 3, 3, 3, 3, 0]); // 4 x class 3, 4 x class 0 -> tie -> 3
  assert.deepEqual([...modePool({ shape: [2, 2, 2], data }, 2).data], [3]);
  data.set([0, 0, 0, 0, 0, 2, 2, 1]);
  assert.deepEqual([...modePool({ shape: [2, 2, 2], data }, 2).data], [0]);
  const up = upsampleClasses({ shape: [1, 2, 1], data: Uint8Array.from([1, 3]) }, 2);
  assert.deepEqual(up.shape, [2, 4, 2]);
  assert.equal(up.data[classIndex(up.shape, 1, 1, 1)], 1);
  assert.equal(up.data[classIndex(up.shape, 0, 2, 0)], 3);
});

test('downsampling a case scales its affine about the first block centre and rejects factors that do not divide', () => {
  const item: PreprocessedCase = {
    caseId: 'c', image: createCaseTensor([4, 4, 4, 3]), classes: { shape: [4, 4, 4], data: new Uint8Array(64) },
    affine: [[-1, 0, 0, -56], [0, -1, 0, 183], [0, 0, 1, 13], [0, 0, 0, 1]], sourceDims: [240, 240, 155],
    sourceAffine: [], crop: { i: [0, 4], j: [0, 4], k: [0, 4] }, tumourFraction: 0,
  };
  const small = downsampleCase(item, 2);
  assert.deepEqual(small.image.shape, [2, 2, 2, 3]);
  assert.deepEqual(small.classes?.shape, [2, 2, 2]);
  assert.deepEqual(small.affine, [[-2, 0, 0, -56.5], [0, -2, 0, 182.5], [0, 0, 2, 13.5], [0, 0, 0, 1]]);
  assert.throws(() => downsampleCase(item, 3), /factor 3 must be a positive integer dividing the shape 4x4x4/);
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
