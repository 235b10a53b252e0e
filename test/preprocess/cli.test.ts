import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { validateDataset } from '../../core/brats/index.js';
import { readNifti, writeNifti } from '../../core/nifti/index.js';
import { niftiOrderToClasses, niftiOrderToTensor } from '../../core/preprocess/index.js';

// One full-size synthetic case, written twice with the same seed, feeds every test in this file.
const root = mkdtempSync(join(tmpdir(), 'fedseg-preprocess-cli-'));
const first = join(root, 'first');
const second = join(root, 'second');
const CASE = 'BraTS20_Training_001';
const caseDir = join(first, 'site-1', CASE);

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length)).sort();
}

before(() => {
  for (const out of [first, second]) {
    const run = fedseg('synth', '--out', out, '--sites', '1', '--cases', '1', '--seed', '11', '--json');
    assert.equal(run.status, 0, run.stderr);
  }
});

after(() => rmSync(root, { recursive: true, force: true }));

test('fedseg synth: the BraTS layout, byte-identical for the same seed, and the validator accepts it', async () => {
  const files = listTree(first);
  assert.deepEqual(files, [
    `/site-1/${CASE}/${CASE}_flair.nii.gz`, `/site-1/${CASE}/${CASE}_seg.nii.gz`, `/site-1/${CASE}/${CASE}_t1.nii.gz`,
    `/site-1/${CASE}/${CASE}_t1ce.nii.gz`, `/site-1/${CASE}/${CASE}_t2.nii.gz`, '/site-1/name_mapping.csv', '/site-1/survival_info.csv',
  ]);
  assert.deepEqual(listTree(second), files);
  for (const file of files) assert.ok(readFileSync(join(first, file)).equals(readFileSync(join(second, file))), `${file} identical`);
  assert.match(readFileSync(join(first, 'site-1/name_mapping.csv'), 'utf8'), /^Grade,BraTS_2017_subject_ID,.*BraTS_2020_subject_ID\nHGG,NA,NA,NA,NA,BraTS20_Training_001\n$/);

  const flair = await readNifti(join(caseDir, `${CASE}_flair.nii.gz`));
  assert.deepEqual(flair.header.dims, [240, 240, 155]);
  assert.equal(flair.header.datatype.name, 'int16');
  assert.deepEqual(flair.header.pixdim.slice(0, 3), [1, 1, 1]);
  assert.deepEqual(flair.header.affine, [[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]]);
  const seg = await readNifti(join(caseDir, `${CASE}_seg.nii.gz`));
  assert.equal(seg.header.datatype.name, 'uint8');

  const report = await validateDataset(first);
  assert.equal(report.ok, true, JSON.stringify(report.cases[0].errors));
  assert.ok(report.notes.some((n) => /survival_info.csv \(1 rows\)/.test(n)), report.notes.join('; '));
  const counts = report.cases[0].maskLabelCounts!;
  assert.ok(counts['1'] > 0 && counts['2'] > 0 && counts['4'] > 0, JSON.stringify(counts));
});

test('fedseg preprocess writes image 128^3 x 3 float32 in [0, 1] and mask classes 0..3 at the crop origin', async () => {
  const out = join(root, 'pre');
  const run = fedseg('preprocess', caseDir, '--out', out, '--json');
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assert.equal(result.caseId, CASE);
  assert.ok(result.tumourFraction > 0.01 && result.passesTumourFilter);
  assert.deepEqual(readdirSync(out).sort(), ['image.nii.gz', 'mask.nii.gz']);

  const image = await readNifti(join(out, 'image.nii.gz'));
  assert.deepEqual(image.header.dims, [128, 128, 128, 3]);
  assert.equal(image.header.datatype.name, 'float32');
  const shifted = [[-1, 0, 0, -56], [0, -1, 0, 239 - 56], [0, 0, 1, 13], [0, 0, 0, 1]];
  assert.deepEqual(image.header.affine, shifted);
  const tensor = niftiOrderToTensor(image.data as Float32Array, [128, 128, 128, 3]);
  for (const [c, modality] of ['flair', 't1ce', 't2'].entries()) {
    // Volume scaling: min-max over the whole 240x240x155 volume, so the crop reaches 1 only where the
    // volume maximum lies inside it; background (0) is in the crop's corners.
    const source = (await readNifti(join(caseDir, `${CASE}_${modality}.nii.gz`))).data as Int16Array;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of source) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    let cropHi = -Infinity;
    for (let k = 13; k < 141; k++) for (let j = 56; j < 184; j++) for (let i = 56; i < 184; i++) {
      const v = source[i + 240 * (j + 240 * k)];
      if (v > cropHi) cropHi = v;
    }
    let min = Infinity;
    let max = -Infinity;
    for (let n = c; n < tensor.data.length; n += 3) {
      const v = tensor.data[n];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assert.equal(min, 0, `${modality} min`);
    assert.ok(Math.abs(max - (cropHi - lo) / (hi - lo)) < 1e-6 && max <= 1, `${modality} max ${max}`);
    if (modality === 'flair') assert.equal(max, 1, 'the brightest FLAIR voxel (edema) is inside the crop');
  }

  const mask = await readNifti(join(out, 'mask.nii.gz'));
  assert.deepEqual(mask.header.dims, [128, 128, 128]);
  assert.equal(mask.header.datatype.name, 'uint8');
  assert.deepEqual(mask.header.affine, shifted);
  const source = await readNifti(join(caseDir, `${CASE}_seg.nii.gz`));
  const classes = niftiOrderToClasses(mask.data as Uint8Array, [128, 128, 128]);
  const present = new Set(classes.data);
  assert.deepEqual([...present].sort(), [0, 1, 2, 3]);
  // Every cropped voxel is the source label with 4 -> 3.
  const src = source.data as Uint8Array;
  const cropped = mask.data as Uint8Array;
  for (let k = 0; k < 128; k += 3) for (let j = 0; j < 128; j++) for (let i = 0; i < 128; i++) {
    const label = src[(i + 56) + 240 * ((j + 56) + 240 * (k + 13))];
    assert.equal(cropped[i + 128 * (j + 128 * k)], label === 4 ? 3 : label);
  }
});

test('--scaling per-slice scales each axial slice on its own', async () => {
  const out = join(root, 'pre-slice');
  const run = fedseg('preprocess', caseDir, '--out', out, '--scaling', 'per-slice', '--channels', 'flair,t1,t1ce,t2', '--json');
  assert.equal(run.status, 0, run.stderr);
  const image = await readNifti(join(out, 'image.nii.gz'));
  assert.deepEqual(image.header.dims, [128, 128, 128, 4]);
  const volume = await readNifti(join(root, 'pre', 'image.nii.gz'));
  assert.notDeepEqual(image.data.subarray(0, 128 ** 3), volume.data.subarray(0, 128 ** 3));
  // Slice k = 60 of the crop is source slice 73: its flair maximum maps to exactly 1 if it lies in the crop.
  const flair = await readNifti(join(caseDir, `${CASE}_flair.nii.gz`));
  const src = flair.data as Int16Array;
  let lo = Infinity;
  let hi = -Infinity;
  for (let n = 240 * 240 * 73; n < 240 * 240 * 74; n++) {
    lo = Math.min(lo, src[n]);
    hi = Math.max(hi, src[n]);
  }
  const data = image.data as Float32Array;
  for (const [i, j] of [[64, 64], [30, 90], [100, 20]]) {
    const expected = (src[(i + 56) + 240 * ((j + 56) + 240 * 73)] - lo) / (hi - lo);
    assert.ok(Math.abs(data[i + 128 * (j + 128 * 60)] - expected) < 1e-6);
  }
});

function expectFailure(run: ReturnType<typeof fedseg>, pattern: RegExp) {
  assert.equal(run.status, 1, run.stderr);
  assert.match(JSON.parse(run.stdout).error, pattern);
}

test('a missing modality fails naming the case and file, and writes nothing', () => {
  const broken = join(root, 'broken', CASE);
  cpSync(caseDir, broken, { recursive: true });
  rmSync(join(broken, `${CASE}_t2.nii.gz`));
  const out = join(root, 'out-missing');
  expectFailure(fedseg('preprocess', broken, '--out', out, '--json'), /case BraTS20_Training_001: .*BraTS20_Training_001_t2.nii.gz: missing t2 modality/);
  assert.equal(existsSync(out), false);
});

test('a path that does not exist, or an output under a file, fails without leaving anything', () => {
  expectFailure(fedseg('preprocess', join(root, 'nope'), '--out', join(root, 'out-nope'), '--json'), /nope: case folder does not exist/);
  assert.equal(existsSync(join(root, 'out-nope')), false);
  const blocker = join(root, 'a-file');
  writeFileSync(blocker, 'x');
  expectFailure(fedseg('preprocess', caseDir, '--out', join(blocker, 'out'), '--json'), /cannot create output folder/);
  expectFailure(fedseg('synth', '--out', join(blocker, 'synth'), '--sites', '1', '--cases', '1', '--json'), /cannot create folder/);
  assert.deepEqual(readdirSync(root).filter((n) => n.includes('tmp')), []);
});

test('a mask with label 3 fails naming the file and value; an existing output folder keeps its old files only', async () => {
  const bad = join(root, 'badmask', CASE);
  cpSync(caseDir, bad, { recursive: true });
  const seg = await readNifti(join(bad, `${CASE}_seg.nii.gz`));
  const labels = Uint8Array.from(seg.data as Uint8Array);
  labels[120 + 240 * (120 + 240 * 70)] = 3;
  await writeNifti(join(bad, `${CASE}_seg.nii.gz`), { dims: [240, 240, 155], affine: seg.header.affine, datatype: 'uint8', data: labels });
  const out = join(root, 'out-existing');
  cpSync(join(root, 'pre'), out, { recursive: true });
  const before = readFileSync(join(out, 'image.nii.gz'));
  expectFailure(fedseg('preprocess', bad, '--out', out, '--json'), /BraTS20_Training_001_seg.nii.gz: mask value 3 at voxel \(120, 120, 70\)/);
  assert.deepEqual(readdirSync(out).sort(), ['image.nii.gz', 'mask.nii.gz']);
  assert.ok(readFileSync(join(out, 'image.nii.gz')).equals(before));
});

test('a bad --scaling or config is rejected before anything is read', () => {
  expectFailure(fedseg('preprocess', caseDir, '--out', join(root, 'o'), '--scaling', 'sideways', '--json'), /field scaling/);
  const config = join(root, 'config.json');
  writeFileSync(config, JSON.stringify({ crop: { i: [0, 300], j: [0, 128], k: [0, 128] } }));
  expectFailure(fedseg('preprocess', caseDir, '--out', join(root, 'o'), '--config', config, '--json'), /crop i range \[0, 300\) does not fit/);
  assert.equal(existsSync(join(root, 'o')), false);
});
