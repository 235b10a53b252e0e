import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readNifti } from '../../core/nifti/index.js';
import { niftiOrderToClasses, niftiOrderToTensor, writePreprocessedCase } from '../../core/preprocess/index.js';
import { generateMiniCase } from '../../core/synth/index.js';

const root = mkdtempSync(join(tmpdir(), 'fedseg-preprocess-output-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('written image and mask read back to the same tensor and classes, with the crop affine', async () => {
  const mini = await generateMiniCase({ size: 16 });
  const out = join(root, 'case');
  const files = await writePreprocessedCase(mini, out);
  const image = await readNifti(files.image);
  assert.deepEqual(image.header.dims, [16, 16, 16, 3]);
  assert.deepEqual(niftiOrderToTensor(image.data as Float32Array, [16, 16, 16, 3]), mini.image);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) assert.ok(Math.abs(image.header.affine[r][c] - mini.affine[r][c]) < 1e-5);
  const mask = await readNifti(files.mask!);
  assert.deepEqual(niftiOrderToClasses(mask.data as Uint8Array, [16, 16, 16]), mini.classes);
});

test('rewriting a case without a mask removes the old mask, so image and mask never disagree', async () => {
  const out = join(root, 'rewrite');
  const mini = await generateMiniCase({ size: 16 });
  await writePreprocessedCase(mini, out);
  const files = await writePreprocessedCase({ ...mini, classes: undefined, tumourFraction: undefined }, out);
  assert.equal(files.mask, null);
  assert.deepEqual(readdirSync(out), ['image.nii.gz']);
});
