import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import type { CropWindow } from '../../core/preprocess/crop.js';
import { cropMaskToClasses, uncropClassesToLabels } from '../../core/preprocess/labels.js';
import { classIndex, niftiIndex } from '../../core/preprocess/layout.js';

const DIMS = [6, 5, 4] as const;
const CROP: CropWindow = { i: [1, 5], j: [1, 4], k: [1, 3] };

function mask(): Uint8Array {
  const data = new Uint8Array(6 * 5 * 4);
  data[niftiIndex(DIMS, 1, 1, 1)] = 1;
  data[niftiIndex(DIMS, 2, 3, 2)] = 2;
  data[niftiIndex(DIMS, 4, 2, 1)] = 4;
  data[niftiIndex(DIMS, 0, 0, 0)] = 4; // outside the crop: not counted
  return data;
}

test('cropping a mask maps label 4 to class 3 and counts tumour voxels of the crop', () => {
  const cropped = cropMaskToClasses(mask(), DIMS, CROP, {});
  const { shape, data } = cropped.classes;
  assert.deepEqual(shape, [4, 3, 2]);
  assert.equal(data[classIndex(shape, 0, 0, 0)], 1);
  assert.equal(data[classIndex(shape, 1, 2, 1)], 2);
  assert.equal(data[classIndex(shape, 3, 1, 0)], 3);
  assert.equal(cropped.tumourVoxels, 3);
  assert.equal(cropped.tumourFraction, 3 / 24);
  assert.equal(data.reduce((sum, v) => sum + (v ? 1 : 0), 0), 3);
});

test('a mask value outside 0/1/2/4 is a FedSegError naming the file, value and voxel', () => {
  for (const bad of [3, 5]) {
    const data = mask();
    data[niftiIndex(DIMS, 5, 4, 3)] = bad;
    assert.throws(() => cropMaskToClasses(data, DIMS, CROP, { caseId: 'BraTS20_Training_009', file: 'seg.nii.gz' }), (err: unknown) => {
      assert.ok(err instanceof FedSegError);
      assert.equal(err.message, `case BraTS20_Training_009: seg.nii.gz: mask value ${bad} at voxel (5, 4, 3) is not a BraTS label (0, 1, 2, 4)`);
      return true;
    });
  }
  const fractional = Float32Array.from(mask());
  fractional[7] = 1.5;
  assert.throws(() => cropMaskToClasses(fractional, DIMS, CROP, {}), /mask value 1.5/);
});

test('uncrop puts every class back at its source voxel as a BraTS label, zeros outside the crop', () => {
  const source = mask();
  source[niftiIndex(DIMS, 0, 0, 0)] = 0;
  const cropped = cropMaskToClasses(source, DIMS, CROP, {});
  assert.deepEqual(uncropClassesToLabels(cropped.classes, CROP, DIMS), source);
});

test('uncrop rejects a prediction of the wrong shape or with a class above 3', () => {
  assert.throws(() => uncropClassesToLabels({ shape: [4, 3, 3], data: new Uint8Array(36) }, CROP, DIMS), /prediction shape 4x3x3 does not match the crop 4x3x2/);
  const classes = { shape: [4, 3, 2] as [number, number, number], data: new Uint8Array(24) };
  classes.data[5] = 4;
  assert.throws(() => uncropClassesToLabels(classes, CROP, DIMS), /class 4 at .* outside 0..3/);
});
