import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { labelsAt } from './helpers.js';
import { writeUint8Nifti } from './nifti-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'fedseg-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', 'metrics', ...args], { encoding: 'utf8' });
}

test('fedseg metrics --json reports every region with anisotropic spacing', () => {
  const dims = [6, 5, 4] as const;
  const truth = join(dir, 'truth.nii');
  const pred = join(dir, 'pred.nii');
  writeUint8Nifti(truth, labelsAt(dims, [[1, 1, 1, 4], [2, 1, 1, 1], [3, 1, 1, 2]]), dims, [1, 1, 2]);
  writeUint8Nifti(pred, labelsAt(dims, [[1, 1, 1, 4], [2, 1, 1, 2], [3, 1, 1, 2], [3, 1, 3, 2]]), dims, [1, 1, 2]);
  const out = fedseg('--pred', pred, '--truth', truth, '--json');
  assert.equal(out.status, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assert.equal(result.ok, true);
  assert.deepEqual(result.spacingMm, [1, 1, 2]);
  assert.equal(result.regions.ET.dice, 1);
  assert.equal(result.regions.TC.dice, 2 / 3);
  assert.equal(result.regions.WT.dice, 6 / 7);
  // The extra WT voxel (3,1,3) is 2 slices = 4 mm from (3,1,1): pred->truth distances [0, 0, 0, 4],
  // p95 at rank 0.95 * 3 = 2.85 -> 0.85 * 4 = 3.4 mm; truth->pred distances are all 0.
  assert.ok(Math.abs(result.regions.WT.hd95 - 3.4) < 1e-9, String(result.regions.WT.hd95));
  assert.equal(result.regions.WT.truthVolumeMl, 3 * 2 / 1000);
  assert.equal(result.regions.WT.predVolumeMl, 4 * 2 / 1000);
  const text = fedseg('--pred', pred, '--truth', truth);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^region +Dice +HD95 mm/m);
  assert.match(text.stdout, /^WT +0\.8571/m);
});

test('fedseg metrics names the file with different dims or a label outside 0/1/2/4', () => {
  const small = join(dir, 'small.nii');
  const big = join(dir, 'big.nii');
  const bad = join(dir, 'label3.nii');
  writeUint8Nifti(small, new Uint8Array(8), [2, 2, 2], [1, 1, 1]);
  writeUint8Nifti(big, new Uint8Array(12), [3, 2, 2], [1, 1, 1]);
  writeUint8Nifti(bad, Uint8Array.from([0, 0, 3, 0, 0, 0, 0, 0]), [2, 2, 2], [1, 1, 1]);
  const dims = fedseg('--pred', big, '--truth', small, '--json');
  assert.equal(dims.status, 1);
  assert.match(JSON.parse(dims.stdout).error, /big\.nii.*dims 3x2x2.*2x2x2/);
  const label = fedseg('--pred', small, '--truth', bad);
  assert.equal(label.status, 1);
  assert.match(label.stderr, /label3\.nii.*label 3 /);
  const missing = fedseg('--pred', small);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--truth/);
});
