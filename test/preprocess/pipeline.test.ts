import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { preprocessConfig } from '../../core/preprocess/config.js';
import { classIndex, niftiIndex, tensorIndex } from '../../core/preprocess/layout.js';
import { passesTumourFilter, preprocessCase, type CaseVolumes } from '../../core/preprocess/pipeline.js';

const DIMS: [number, number, number] = [10, 9, 8];
const AFFINE = [[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]];
const CROP = { i: [2, 8] as [number, number], j: [1, 7] as [number, number], k: [3, 7] as [number, number] };

/** Modality m at voxel (i, j, k) = (m + 1) * (i + 2j + 3k); mask has one voxel of each label inside the crop. */
function fakeCase(overrides: Partial<Record<string, [number, number, number]>> = {}, withMask = true): CaseVolumes {
  const volume = (scale: number, dims: [number, number, number]) => {
    const data = new Int16Array(dims[0] * dims[1] * dims[2]);
    for (let k = 0; k < dims[2]; k++) for (let j = 0; j < dims[1]; j++) for (let i = 0; i < dims[0]; i++) {
      data[niftiIndex(dims, i, j, k)] = scale * (i + 2 * j + 3 * k);
    }
    return data;
  };
  const order = ['flair', 't1', 't1ce', 't2'];
  const source: CaseVolumes = {
    caseId: 'case-x',
    loadModality: (m) => {
      const dims = overrides[m] ?? DIMS;
      return { dims, data: volume(order.indexOf(m) + 1, dims), affine: AFFINE, file: `${m}.nii.gz` };
    },
  };
  if (withMask) {
    source.loadMask = () => {
      const data = new Uint8Array(DIMS[0] * DIMS[1] * DIMS[2]);
      data[niftiIndex(DIMS, 2, 1, 3)] = 1;
      data[niftiIndex(DIMS, 3, 4, 5)] = 2;
      data[niftiIndex(DIMS, 7, 6, 6)] = 4;
      data[niftiIndex(DIMS, 0, 0, 0)] = 2; // outside the crop
      return { dims: DIMS, data, affine: AFFINE, file: 'seg.nii.gz' };
    };
  }
  return source;
}

test('preprocessCase stacks FLAIR, T1ce, T2 scaled to [0, 1] over the whole volume, cropped, channel last', async () => {
  const result = await preprocessCase(fakeCase(), preprocessConfig({ crop: CROP }));
  assert.deepEqual(result.image.shape, [6, 6, 4, 3]);
  const max = 9 + 2 * 8 + 3 * 7; // voxel (9, 8, 7), outside the crop
  const expected = (i: number, j: number, k: number) => (i + 2 * j + 3 * k) / max;
  for (const [i, j, k] of [[0, 0, 0], [5, 5, 3], [1, 2, 3]]) {
    for (let c = 0; c < 3; c++) {
      const got = result.image.data[tensorIndex(result.image.shape, i, j, k, c)];
      assert.ok(Math.abs(got - expected(i + 2, j + 1, k + 3)) < 1e-6, `voxel ${i},${j},${k} channel ${c}`);
    }
  }
  assert.ok(result.image.data.every((v) => v >= 0 && v <= 1));
  assert.deepEqual(result.affine, [[-1, 0, 0, -2], [0, -1, 0, 238], [0, 0, 1, 3], [0, 0, 0, 1]]);
  assert.deepEqual(result.sourceDims, DIMS);
  const classes = result.classes!;
  assert.equal(classes.data[classIndex(classes.shape, 0, 0, 0)], 1);
  assert.equal(classes.data[classIndex(classes.shape, 1, 3, 2)], 2);
  assert.equal(classes.data[classIndex(classes.shape, 5, 5, 3)], 3);
  assert.equal(result.tumourFraction, 3 / (6 * 6 * 4));
});

test('channels follow the config: T1 can be added, order kept', async () => {
  const result = await preprocessCase(fakeCase(), preprocessConfig({ crop: CROP, channels: ['t1', 'flair', 't1ce', 't2'] }));
  assert.equal(result.image.shape[3], 4);
  // Each modality is a positive multiple of the same pattern, so after min-max they agree voxel by voxel.
  const at = (c: number) => result.image.data[tensorIndex(result.image.shape, 3, 2, 1, c)];
  assert.ok(Math.abs(at(0) - at(1)) < 1e-6 && Math.abs(at(2) - at(3)) < 1e-6 && at(0) > 0);
});

test('per-slice scaling reaches 0 and 1 in every axial slice of the full volume', async () => {
  const result = await preprocessCase(fakeCase(), preprocessConfig({ crop: { i: [0, 10], j: [0, 9], k: [0, 8] }, scaling: 'per-slice' }));
  const { shape, data } = result.image;
  for (let k = 0; k < 8; k++) {
    assert.equal(data[tensorIndex(shape, 0, 0, k, 0)], 0);
    assert.equal(data[tensorIndex(shape, 9, 8, k, 0)], 1);
  }
});

test('a case without a mask has no classes and never passes the training filter', async () => {
  const config = preprocessConfig({ crop: CROP });
  const result = await preprocessCase(fakeCase({}, false), config);
  assert.equal(result.classes, undefined);
  assert.equal(passesTumourFilter(result, config), false);
});

test('the tumour filter keeps a case only above the configured fraction (default 1 %)', async () => {
  const withMask = await preprocessCase(fakeCase(), preprocessConfig({ crop: CROP }));
  assert.equal(passesTumourFilter(withMask, preprocessConfig({ crop: CROP })), true); // 3/144 > 1 %
  assert.equal(passesTumourFilter(withMask, preprocessConfig({ crop: CROP, minTumourFraction: 3 / 144 })), false);
  assert.equal(passesTumourFilter(withMask, preprocessConfig({ crop: CROP, minTumourFraction: 0.02 })), true);
});

test('a modality whose dims differ is a FedSegError naming both files', async () => {
  await assert.rejects(preprocessCase(fakeCase({ t2: [10, 9, 7] }), preprocessConfig({ crop: CROP })), (err: unknown) => {
    assert.ok(err instanceof FedSegError);
    assert.equal(err.message, 'case case-x: t2.nii.gz: field dim: dims 10x9x7 differ from 10x9x8 of flair.nii.gz');
    return true;
  });
});

test('config validation names the bad field', () => {
  assert.throws(() => preprocessConfig({ scaling: 'per-volume' }), (err: unknown) => err instanceof FedSegError && /field scaling/.test(err.message));
  assert.throws(() => preprocessConfig({ channels: ['flair', 'flair'] }), /field channels: .*must not repeat/);
  assert.throws(() => preprocessConfig({ crop: { i: [10, 5], j: [0, 1], k: [0, 1] } }), /field crop.i/);
  assert.throws(() => preprocessConfig({ minTumourFraction: 2 }), /field minTumourFraction/);
  assert.deepEqual(preprocessConfig(), {
    channels: ['flair', 't1ce', 't2'], scaling: 'volume', crop: { i: [56, 184], j: [56, 184], k: [13, 141] }, minTumourFraction: 0.01,
  });
});
