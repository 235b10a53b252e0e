import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openPreprocessedDataset, preprocessConfig, uncropPrediction, type ClassVolume } from '../../core/preprocess/index.js';
import { generateCase, siteProfile, writeCaseFolder } from '../../core/synth/index.js';

const root = mkdtempSync(join(tmpdir(), 'fedseg-dataset-'));
after(() => rmSync(root, { recursive: true, force: true }));

// Small 60x60x40 cases covering the whole head at 4 mm; the crop is their middle.
const SMALL = { dims: [60, 60, 40] as const, fov: { start: [0, 0, 0] as const, size: [240, 240, 155] as const } };
const config = preprocessConfig({ crop: { i: [14, 46], j: [14, 46], k: [4, 36] } });

async function writeSite(): Promise<string> {
  const site = join(root, 'site-1');
  const big = generateCase(1, siteProfile(1, 1), 0, SMALL);
  await writeCaseFolder(join(site, 'BraTS20_Training_001'), 'BraTS20_Training_001', big);
  const tiny = generateCase(1, siteProfile(1, 1), 1, SMALL);
  tiny.seg.fill(0);
  tiny.seg[30 + 60 * (30 + 60 * 20)] = 4; // one tumour voxel: far below 1 %
  await writeCaseFolder(join(site, 'BraTS20_Training_002'), 'BraTS20_Training_002', tiny);
  await writeCaseFolder(join(site, 'BraTS20_Training_003'), 'BraTS20_Training_003', generateCase(1, siteProfile(1, 1), 2, SMALL));
  rmSync(join(site, 'BraTS20_Training_003', 'BraTS20_Training_003_t1ce.nii.gz'));
  return site;
}

test('the dataset streams kept cases one at a time and reports filter drops and failures', async () => {
  const site = await writeSite();
  const dataset = await openPreprocessedDataset(site, config);
  const seen: string[] = [];
  for await (const item of dataset) {
    seen.push(item.caseId);
    assert.deepEqual(item.image.shape, [32, 32, 32, 3]);
    assert.ok(item.tumourFraction! > 0.01);
  }
  assert.deepEqual(seen, ['BraTS20_Training_001']);
  assert.equal(dataset.stats.total, 3);
  assert.equal(dataset.stats.yielded, 1);
  assert.deepEqual(dataset.stats.droppedByFilter, [{ caseId: 'BraTS20_Training_002', tumourFraction: 1 / 32 ** 3 }]);
  assert.equal(dataset.stats.failed.length, 1);
  assert.match(dataset.stats.failed[0].error, /case BraTS20_Training_003: .*missing t1ce modality/);

  // Without the filter (inference over every case) the small-tumour case comes through too.
  const all = await openPreprocessedDataset(site, config, { tumourFilter: false });
  const ids: string[] = [];
  for await (const item of all) ids.push(item.caseId);
  assert.deepEqual(ids, ['BraTS20_Training_001', 'BraTS20_Training_002']);
  await assert.rejects(async () => {
    for await (const item of await openPreprocessedDataset(site, config, { onError: 'throw' })) assert.ok(item);
  }, /missing t1ce/);
});

test('a prediction goes back into the source grid: cropped voxels return, class 3 becomes label 4', async () => {
  const dataset = await openPreprocessedDataset(join(root, 'site-1'), config);
  for await (const item of dataset) {
    const back = uncropPrediction(item.classes as ClassVolume, item);
    assert.deepEqual(back.dims, [60, 60, 40]);
    assert.deepEqual(back.affine, item.sourceAffine);
    const source = generateCase(1, siteProfile(1, 1), 0, SMALL).seg;
    for (let k = 0; k < 40; k++) for (let j = 0; j < 60; j++) for (let i = 0; i < 60; i++) {
      const n = i + 60 * (j + 60 * k);
      const inside = i >= 14 && i < 46 && j >= 14 && j < 46 && k >= 4 && k < 36;
      assert.equal(back.data[n], inside ? source[n] : 0);
    }
    assert.ok(back.data.includes(4));
  }
});

test('downsampled cases can be cached so later passes skip the disk', async () => {
  const site = join(root, 'site-1');
  const dataset = await openPreprocessedDataset(site, config, { downsample: 4, cacheInMemory: true });
  const firstPass: string[] = [];
  for await (const item of dataset) {
    assert.deepEqual(item.image.shape, [8, 8, 8, 3]);
    assert.deepEqual(item.classes?.shape, [8, 8, 8]);
    firstPass.push(item.caseId);
  }
  rmSync(join(site, 'BraTS20_Training_001'), { recursive: true });
  const secondPass: string[] = [];
  for await (const item of dataset) secondPass.push(item.caseId);
  assert.deepEqual(secondPass, firstPass);
  assert.equal(dataset.stats.droppedByFilter.length, 1);
});
