import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { readNifti, writeNifti } from '../../core/nifti/index.js';
import { cropOrigin, cropShape, DEFAULT_CROP, preprocessConfig } from '../../core/preprocess/index.js';
import { makeModelConfig } from '../../core/model/config.js';
import { createModel } from '../../core/model/network.js';
import { SeededRandom } from '../../core/model/random.js';
import { generateCase, siteProfile, writeCaseFolder } from '../../core/synth/index.js';
import { initBackend } from '../../core/tf/backend.js';
import { prepareTrainingData } from '../../core/train/data.js';
import { trainLocal } from '../../core/train/trainer.js';

let dir: string;
// Small on-disk cases: the 128^3 crop window of synthetic cases sampled on a 16^3 grid, read with a whole-volume crop.
const config = preprocessConfig({ crop: { i: [0, 16], j: [0, 16], k: [0, 16] } });

before(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'fedseg-train-data-'));
  for (let n = 1; n <= 3; n++) {
    const id = `BraTS20_Training_00${n}`;
    const raw = generateCase(5, siteProfile(5, 1), n, { dims: [16, 16, 16], fov: { start: cropOrigin(DEFAULT_CROP), size: cropShape(DEFAULT_CROP) } });
    await writeCaseFolder(join(dir, 'site-1', id), id, raw);
  }
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('cases are split train/validation by seed; those over the cache budget are streamed from disk each epoch', async () => {
  const data = await prepareTrainingData([join(dir, 'site-1')], config, { validationFraction: 0.34, seed: 3, cacheBytes: 16 ** 3 * 13 });
  assert.equal(data.train.size, 2);
  assert.equal(data.validation.size, 1);
  assert.deepEqual([...data.train.caseIds, ...data.validation.caseIds].sort(), ['BraTS20_Training_001', 'BraTS20_Training_002', 'BraTS20_Training_003']);
  assert.equal(data.train.cached.length + data.validation.cached.length, 1, 'only one case fits the budget');
  const seen: string[] = [];
  for await (const item of data.train.pass(new SeededRandom(1))) {
    assert.deepEqual(item.image.shape, [16, 16, 16, 3]);
    seen.push(item.caseId);
  }
  assert.deepEqual(seen.sort(), data.train.caseIds.sort());
  const again = await prepareTrainingData([join(dir, 'site-1')], config, { validationFraction: 0.34, seed: 3 });
  assert.deepEqual(again.validation.caseIds, data.validation.caseIds);

  const model = createModel(makeModelConfig({ baseFilters: 2, depth: 2, inputShape: [16, 16, 16] }), 1);
  const result = await trainLocal({ model, data, epochs: 1, batchSize: 2, seed: 1 });
  assert.equal(result.numCases, 2);
  assert.ok(result.metrics.validation && Number.isFinite(result.metrics.validation.loss));
  model.dispose();
});

test('a folder with no usable case says why every case was dropped', async () => {
  const strict = preprocessConfig({ ...config, minTumourFraction: 0.99 });
  await assert.rejects(
    prepareTrainingData([join(dir, 'site-1')], strict),
    (err: unknown) => err instanceof FedSegError && /site-1: no usable training case among 3: 3 dropped by the tumour-fraction filter \(BraTS20_Training_001 [\d.]+ %/.test(err.message),
  );
  await assert.rejects(prepareTrainingData([join(dir, 'nowhere')], config), /nowhere: dataset folder does not exist/);
});

test('a mask file chosen per case replaces both the _seg and a _final_seg mask, for training and for scoring', async () => {
  const id = 'BraTS20_Training_002';
  const caseDir = join(dir, 'site-1', id);
  const seg = await readNifti(join(caseDir, `${id}_seg.nii.gz`));
  const write = (path: string, label: number) => writeNifti(path, { dims: seg.header.dims.slice(0, 3), affine: seg.header.affine, datatype: 'uint8', data: new Uint8Array(seg.data.length).fill(label) });
  // A reviewer's _final_seg in the hospital folder (edema everywhere) that the app did not choose.
  await write(join(caseDir, `${id}_final_seg.nii.gz`), 2);
  const chosen = join(dir, `${id}-chosen.nii.gz`);
  await write(chosen, 1);
  try {
    const data = await prepareTrainingData([join(dir, 'site-1')], config, { validationFraction: 0, maskFiles: new Map([[id, chosen]]) });
    assert.equal(data.masks.get(id), chosen);
    const item = data.train.cached.find((c) => c.caseId === id);
    assert.ok(item, 'the case is cached');
    const classes = new Set(item.classes.data);
    assert.deepEqual([...classes], [1], 'every voxel carries the chosen mask\'s label 1, not the _final_seg label 2');
  } finally {
    await rm(join(caseDir, `${id}_final_seg.nii.gz`), { force: true });
  }
});
