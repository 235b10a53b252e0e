import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateCase, siteProfile, writeCaseFolder, writeSyntheticDataset } from '../../core/synth/index.js';

const root = mkdtempSync(join(tmpdir(), 'fedseg-preprocess-dataset-'));
after(() => rmSync(root, { recursive: true, force: true }));
const GRID = { dims: [60, 60, 40] as const, fov: { start: [0, 0, 0] as const, size: [240, 240, 155] as const } };

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

test('dataset mode writes each kept case, reports filter drops and failures, and exits 1 if any case failed', async () => {
  const data = join(root, 'data');
  await writeSyntheticDataset({ out: data, sites: 1, casesPerSite: 2, seed: 4, grid: GRID });
  const small = generateCase(4, siteProfile(4, 1), 5, GRID);
  small.seg.fill(0);
  await writeCaseFolder(join(data, 'site-1', 'BraTS20_Training_009'), 'BraTS20_Training_009', small);
  const config = join(root, 'config.json');
  writeFileSync(config, JSON.stringify({ crop: { i: [14, 46], j: [14, 46], k: [4, 36] } }));

  const out = join(root, 'out');
  const run = fedseg('preprocess', data, '--out', out, '--config', config, '--json');
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.equal(result.total, 3);
  assert.deepEqual(result.written.map((w: { caseId: string }) => w.caseId), ['BraTS20_Training_001', 'BraTS20_Training_002']);
  assert.deepEqual(result.droppedByFilter, [{ caseId: 'BraTS20_Training_009', tumourFraction: 0 }]);
  assert.deepEqual(readdirSync(out).sort(), ['BraTS20_Training_001', 'BraTS20_Training_002']);
  assert.deepEqual(readdirSync(join(out, 'BraTS20_Training_001')).sort(), ['image.nii.gz', 'mask.nii.gz']);

  rmSync(join(data, 'site-1', 'BraTS20_Training_001', 'BraTS20_Training_001_flair.nii.gz'));
  const all = join(root, 'out-all');
  const second = fedseg('preprocess', data, '--out', all, '--config', config, '--all', '--json');
  assert.equal(second.status, 1);
  const report = JSON.parse(second.stdout);
  assert.equal(report.ok, false);
  assert.match(report.failed[0].error, /case BraTS20_Training_001: .*missing flair modality/);
  assert.deepEqual(readdirSync(all).sort(), ['BraTS20_Training_002', 'BraTS20_Training_009']);
  assert.equal(existsSync(join(all, 'BraTS20_Training_001')), false);
});
