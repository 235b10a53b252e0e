import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { assertCropFits, cropShape, DEFAULT_CROP, shiftAffineToCrop, type CropWindow } from '../../core/preprocess/crop.js';
import { createCaseTensor, niftiIndex, tensorIndex } from '../../core/preprocess/layout.js';
import { minMaxScaling, writeScaledCrop } from '../../core/preprocess/scaling.js';

const DIMS = [4, 3, 3] as const;
/** Slice k holds values 10k + n for n = 0..11, except slice 2, which is constant 7. */
function volume(): Int16Array {
  const data = new Int16Array(36);
  for (let k = 0; k < 3; k++) for (let n = 0; n < 12; n++) data[k * 12 + n] = k === 2 ? 7 : 10 * k + n;
  return data;
}
const WHOLE: CropWindow = { i: [0, 4], j: [0, 3], k: [0, 3] };

test('the default crop is [56:184, 56:184, 13:141] -> 128^3', () => {
  assert.deepEqual(DEFAULT_CROP, { i: [56, 184], j: [56, 184], k: [13, 141] });
  assert.deepEqual(cropShape(DEFAULT_CROP), [128, 128, 128]);
});

test('volume scaling maps the whole volume min to 0 and max to 1', () => {
  const data = volume();
  const tensor = createCaseTensor([4, 3, 3, 1]);
  writeScaledCrop(tensor, 0, data, DIMS, minMaxScaling(data, DIMS, 'volume'), WHOLE);
  // min 0 (slice 0, n 0), max 21 (slice 1, n 11)
  assert.equal(tensor.data[tensorIndex(tensor.shape, 0, 0, 0, 0)], 0);
  assert.equal(tensor.data[tensorIndex(tensor.shape, 3, 2, 1, 0)], 1);
  assert.ok(Math.abs(tensor.data[tensorIndex(tensor.shape, 1, 0, 2, 0)] - 7 / 21) < 1e-6);
});

test('per-slice scaling scales each axial slice on its own; a constant slice becomes zeros', () => {
  const data = volume();
  const tensor = createCaseTensor([4, 3, 3, 1]);
  writeScaledCrop(tensor, 0, data, DIMS, minMaxScaling(data, DIMS, 'per-slice'), WHOLE);
  for (let k = 0; k < 2; k++) {
    assert.equal(tensor.data[tensorIndex(tensor.shape, 0, 0, k, 0)], 0);
    assert.equal(tensor.data[tensorIndex(tensor.shape, 3, 2, k, 0)], 1);
    assert.ok(Math.abs(tensor.data[tensorIndex(tensor.shape, 1, 1, k, 0)] - 5 / 11) < 1e-6);
  }
  for (let j = 0; j < 3; j++) for (let i = 0; i < 4; i++) assert.equal(tensor.data[tensorIndex(tensor.shape, i, j, 2, 0)], 0);
});

test('a constant volume scales to zeros, not NaN', () => {
  const data = new Float32Array(36).fill(5);
  const tensor = createCaseTensor([4, 3, 3, 1]);
  writeScaledCrop(tensor, 0, data, DIMS, minMaxScaling(data, DIMS, 'volume'), WHOLE);
  assert.ok(tensor.data.every((v) => v === 0));
});

test('scaling uses the whole volume, then the crop takes the voxels it needs into its channel', () => {
  const data = volume();
  const crop: CropWindow = { i: [1, 3], j: [1, 2], k: [0, 2] };
  const tensor = createCaseTensor([...cropShape(crop), 2]);
  writeScaledCrop(tensor, 1, data, DIMS, minMaxScaling(data, DIMS, 'volume'), crop);
  for (let i = 0; i < 2; i++) for (let k = 0; k < 2; k++) {
    const source = data[niftiIndex(DIMS, i + 1, 1, k)];
    assert.ok(Math.abs(tensor.data[tensorIndex(tensor.shape, i, 0, k, 1)] - source / 21) < 1e-6);
    assert.equal(tensor.data[tensorIndex(tensor.shape, i, 0, k, 0)], 0, 'channel 0 untouched');
  }
});

test('the cropped affine moves the translation to affine x [i0, j0, k0, 1]', () => {
  const affine = [[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]];
  assert.deepEqual(shiftAffineToCrop(affine, DEFAULT_CROP), [[-1, 0, 0, -56], [0, -1, 0, 183], [0, 0, 1, 13], [0, 0, 0, 1]]);
  const oblique = [[0.9, 0.1, 0, 5], [0, 1.2, 0.3, -7], [0.2, 0, 2, 1], [0, 0, 0, 1]];
  const shifted = shiftAffineToCrop(oblique, { i: [2, 4], j: [3, 5], k: [1, 2] });
  assert.deepEqual(shifted.map((row) => row[3]), [0.9 * 2 + 0.1 * 3 + 5, 1.2 * 3 + 0.3 + -7, 0.2 * 2 + 2 + 1, 1]);
  assert.deepEqual(shifted.map((row) => row.slice(0, 3)), oblique.map((row) => row.slice(0, 3)));
});

test('a crop that does not fit the volume is a FedSegError naming the axis', () => {
  assert.throws(() => assertCropFits(DEFAULT_CROP, [128, 240, 155], { caseId: 'c1' }), (err: unknown) => {
    assert.ok(err instanceof FedSegError);
    assert.match(err.message, /case c1: .*crop i range \[56, 184\) does not fit the volume's 128 voxels/);
    return true;
  });
  assertCropFits(DEFAULT_CROP, [240, 240, 155], {});
});
