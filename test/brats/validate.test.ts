import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CaseReport, type DatasetReport, discoverDataset, formatCaseError, validateDataset } from '../../core/brats/index.js';
import { FedSegError } from '../../core/errors.js';
import { writeNifti } from '../../core/nifti/index.js';
import { AFFINE, DIMS, editNifti, inTempDir, maskData, writeCase } from './fixtures.js';

describe('validateDataset on a folder with good and broken cases', () => {
  let root = '';
  let report: DatasetReport;
  const streamed: string[] = [];
  const byId = (id: string): CaseReport => {
    const found = report.cases.find((c) => c.caseId === id);
    assert.ok(found, `case ${id} reported`);
    return found;
  };
  /** Asserts the case failed with exactly one error whose one-line message names case, file and reason. */
  const expectOneError = (id: string, fileSuffix: string, reason: RegExp) => {
    const c = byId(id);
    assert.equal(c.ok, false, `${id} should fail`);
    assert.equal(c.errors.length, 1, `${id}: ${JSON.stringify(c.errors)}`);
    assert.ok(c.errors[0].file.endsWith(fileSuffix), `${id}: error names ${c.errors[0].file}`);
    const line = formatCaseError(c.caseId, c.errors[0]);
    assert.ok(line.startsWith(`case ${id}: ${id}`), line);
    assert.ok(line.includes(fileSuffix), line);
    assert.match(line, reason);
  };

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fedseg-brats-'));
    await writeCase(root, 'BraTS20_Training_001');
    await writeCase(root, 'BraTS20_Training_002', { ext: '.nii' });
    await writeCase(root, 'BraTS20_Training_003', { dimsOf: { t2: [12, 10, 7] } });
    await writeCase(root, 'BraTS20_Training_004', { modalities: ['flair', 't1', 't2'] });
    await writeCase(root, 'BraTS20_Training_005', { mask: maskData([3, 5, 5]) });
    const c6 = await writeCase(root, 'BraTS20_Training_006');
    const flair = readFileSync(join(c6, 'BraTS20_Training_006_flair.nii.gz'));
    writeFileSync(join(c6, 'BraTS20_Training_006_flair.nii.gz'), flair.subarray(0, flair.length - 30));
    const c7 = await writeCase(root, 'BraTS20_Training_007');
    const t1 = readFileSync(join(c7, 'BraTS20_Training_007_t1.nii.gz'));
    t1.fill(0x55, 12, 60);
    writeFileSync(join(c7, 'BraTS20_Training_007_t1.nii.gz'), t1);
    const c8 = await writeCase(root, 'BraTS20_Training_008', { ext: '.nii' });
    writeFileSync(join(c8, 'BraTS20_Training_008_t2.nii'), 'this is a radiology report, not an image\n'.repeat(20));
    const c9 = await writeCase(root, 'BraTS20_Training_009');
    editNifti(join(c9, 'BraTS20_Training_009_t1ce.nii.gz'), (b) => { b.writeInt32LE(540 + 1, 0); return b; });
    const c10 = await writeCase(root, 'BraTS20_Training_010');
    editNifti(join(c10, 'BraTS20_Training_010_flair.nii.gz'), (b) => { b.writeInt16LE(32, 70); return b; });
    await writeCase(root, 'BraTS20_Training_011', { maskName: null });
    await writeCase(root, 'BraTS20_Training_355', { ext: '.nii', maskName: 'W39_1998.09.19_Segm.nii' });
    await writeCase(root, 'BraTS20_Validation_001', { maskName: null });
    writeFileSync(join(root, 'name_mapping.csv'), 'Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,BraTS_2019_subject_ID,BraTS_2020_subject_ID\nHGG,Brats17_CBICA_AAB_1,NA,NA,BraTS19_CBICA_AAB_1,BraTS20_Training_001\n');
    writeFileSync(join(root, 'survival_info.csv'), 'Brats20ID,Age,Survival_days,Extent_of_Resection\r\nBraTS20_Training_001,60.463,289,GTR\r\nBraTS20_Training_002,52.263,ALIVE (361 days later),NA\r\n');
    report = await validateDataset(root, (c) => streamed.push(c.caseId));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('reports every case, in order, streaming each as it is done', () => {
    assert.equal(report.cases.length, 13);
    assert.deepEqual(streamed, report.cases.map((c) => c.caseId));
    assert.equal(report.ok, false);
    assert.equal(report.failed, 9);
  });

  test('good cases pass: .nii.gz, .nii, validation case without mask', () => {
    for (const id of ['BraTS20_Training_001', 'BraTS20_Training_002', 'BraTS20_Validation_001']) {
      const c = byId(id);
      assert.equal(c.ok, true, `${id}: ${JSON.stringify(c.errors)}`);
      assert.deepEqual(c.dims, DIMS);
    }
    assert.equal(byId('BraTS20_Training_001').maskLabelCounts?.['4'], (DIMS[0] * DIMS[1] * DIMS[2]) / 6);
    assert.equal(byId('BraTS20_Validation_001').split, 'validation');
    assert.match(byId('BraTS20_Training_001').notes.join('\n'), /dims 12x10x8 are not the BraTS grid 240x240x155/);
    assert.match(byId('BraTS20_Validation_001').notes.join('\n'), /no mask \(validation case\)/);
  });

  test('case-355 quirk: the one extra NIfTI is the mask, with a note', () => {
    const c = byId('BraTS20_Training_355');
    assert.equal(c.ok, true, JSON.stringify(c.errors));
    assert.ok(c.files.mask?.endsWith('W39_1998.09.19_Segm.nii'));
    assert.match(c.notes.join('\n'), /mask is W39_1998\.09\.19_Segm\.nii: no \*_seg file.*case-355/);
  });

  test('modalities with different dims name the file that differs', () => {
    expectOneError('BraTS20_Training_003', 'BraTS20_Training_003_t2.nii.gz', /dims 12x10x7 differ from BraTS20_Training_003_flair\.nii\.gz \(12x10x8\)/);
  });

  test('a missing modality or mask names what was expected', () => {
    expectOneError('BraTS20_Training_004', 'BraTS20_Training_004_t1ce.nii.gz', /missing t1ce/);
    expectOneError('BraTS20_Training_011', 'BraTS20_Training_011_seg.nii.gz', /missing mask/);
  });

  test('a mask with 3 or 5 names the values', () => {
    expectOneError('BraTS20_Training_005', 'BraTS20_Training_005_seg.nii.gz', /mask values must be 0, 1, 2 or 4; found 3 \(1 voxel\), 5 \(2 voxels\)/);
  });

  test('unreadable files: truncated, corrupt gzip, not NIfTI, wrong sizeof_hdr, unsupported datatype', () => {
    expectOneError('BraTS20_Training_006', 'BraTS20_Training_006_flair.nii.gz', /truncated gzip stream/);
    expectOneError('BraTS20_Training_007', 'BraTS20_Training_007_t1.nii.gz', /corrupt gzip data/);
    expectOneError('BraTS20_Training_008', 'BraTS20_Training_008_t2.nii', /not a NIfTI file/);
    expectOneError('BraTS20_Training_009', 'BraTS20_Training_009_t1ce.nii.gz', /wrong sizeof_hdr 541/);
    expectOneError('BraTS20_Training_010', 'BraTS20_Training_010_flair.nii.gz', /unsupported datatype complex64/);
  });

  test('side CSVs are read, including ALIVE survival strings', async () => {
    const dataset = await discoverDataset(root);
    assert.equal(dataset.clinical.nameMapping.get('BraTS20_Training_001')?.grade, 'HGG');
    assert.equal(dataset.clinical.nameMapping.get('BraTS20_Training_001')?.ids.BraTS_2017_subject_ID, 'Brats17_CBICA_AAB_1');
    assert.deepEqual(dataset.clinical.survival.get('BraTS20_Training_002'), { age: 52.263, survivalDays: 361, alive: true, extentOfResection: null });
    assert.deepEqual(dataset.clinical.survival.get('BraTS20_Training_001'), { age: 60.463, survivalDays: 289, alive: false, extentOfResection: 'GTR' });
    assert.equal(report.notes.length, 2);
  });
});

describe('dataset folder errors', () => {
  test('nonexistent path, empty folder, folder without NIfTI files, a plain file', async () => {
    await inTempDir('fedseg-brats-empty-', async (root) => {
      const isError = (pattern: RegExp) => (err: unknown) => err instanceof FedSegError && pattern.test(err.message);
      await assert.rejects(validateDataset(join(root, 'missing')), isError(/missing: dataset folder does not exist/));
      await assert.rejects(validateDataset(root), isError(/fedseg-brats-empty-\w+: no BraTS cases found/));
      mkdirSync(join(root, 'BraTS20_Training_001'));
      writeFileSync(join(root, 'BraTS20_Training_001', 'readme.txt'), 'hi');
      await assert.rejects(validateDataset(root), isError(/no BraTS cases found/));
      await assert.rejects(validateDataset(join(root, 'BraTS20_Training_001', 'readme.txt')), isError(/is a file, not a dataset folder/));
    });
  });
});

describe('discovery', () => {
  test('site folders, a single case folder, final masks, duplicates and leftovers of interrupted writes', async () => {
    await inTempDir('fedseg-brats-sites-', async (root) => {
      await writeCase(join(root, 'site-1'), 'BraTS20_Training_001');
      await writeCase(join(root, 'site-2'), 'BraTS20_Training_002', { ext: '.nii' });
      await writeCase(join(root, 'site-2'), 'BraTS20_Training_003.tmp-4242');
      mkdirSync(join(root, '.cache', 'BraTS20_Training_009'), { recursive: true });
      writeFileSync(join(root, '.cache', 'BraTS20_Training_009', 'x.nii'), 'x');
      const c2 = join(root, 'site-2', 'BraTS20_Training_002');
      await writeCase(join(root, 'site-2'), 'BraTS20_Training_002', { modalities: ['t2'], maskName: 'BraTS20_Training_002_final_seg.nii.gz' });
      writeFileSync(join(root, 'site-2', 'name_mapping.csv'), 'Grade,BraTS_2020_subject_ID\nLGG,BraTS20_Training_002\n');
      const dataset = await discoverDataset(root);
      assert.deepEqual(dataset.cases.map((c) => c.caseId), ['BraTS20_Training_001', 'BraTS20_Training_002']);
      const two = dataset.cases[1];
      assert.ok(two.finalMask?.endsWith('BraTS20_Training_002_final_seg.nii.gz'));
      assert.ok(two.mask?.endsWith('BraTS20_Training_002_seg.nii'));
      assert.equal(two.maskSource, 'seg');
      assert.deepEqual(two.problems.map((p) => [p.file, p.reason]), [[join(c2, 'BraTS20_Training_002_t2.nii.gz'), 'second t2 file (also BraTS20_Training_002_t2.nii); keep only one']]);
      assert.equal(dataset.clinical.nameMapping.get('BraTS20_Training_002')?.grade, 'LGG');
      const report = await validateDataset(root);
      assert.equal(report.cases[0].ok, true);
      assert.equal(report.cases[1].ok, false);
      assert.match(formatCaseError('BraTS20_Training_002', report.cases[1].errors[0]), /case BraTS20_Training_002: BraTS20_Training_002_t2\.nii\.gz: second t2 file/);
      const single = await discoverDataset(join(root, 'site-1', 'BraTS20_Training_001'));
      assert.equal(single.cases.length, 1);
      // Symbolic links to case folders and files are followed; a broken link is reported when read.
      const linked = join(root, 'linked');
      mkdirSync(join(linked, 'BraTS20_Training_031'), { recursive: true });
      const source = join(root, 'site-1', 'BraTS20_Training_001');
      for (const role of ['flair', 't1', 't1ce', 't2', 'seg']) {
        symlinkSync(join(source, `BraTS20_Training_001_${role}.nii.gz`), join(linked, 'BraTS20_Training_031', `BraTS20_Training_031_${role}.nii.gz`));
      }
      symlinkSync(source, join(linked, 'BraTS20_Training_001'));
      const viaLinks = await validateDataset(linked);
      assert.deepEqual(viaLinks.cases.map((c) => [c.caseId, c.ok]), [['BraTS20_Training_001', true], ['BraTS20_Training_031', true]]);
      rmSync(join(source, 'BraTS20_Training_001_t2.nii.gz'));
      const broken = await validateDataset(join(linked, 'BraTS20_Training_031'));
      assert.match(formatCaseError('BraTS20_Training_031', broken.cases[0].errors[0]), /BraTS20_Training_031_t2\.nii\.gz: file does not exist/);
    });
  });
});

describe('masks stored in other datatypes', () => {
  test('int16 and scaled float32 masks: labels counted after scaling, non-label values reported', async () => {
    await inTempDir('fedseg-brats-masktypes-', async (root) => {
      const count = DIMS[0] * DIMS[1] * DIMS[2];
      const labels = Array.from(maskData());
      const good = await writeCase(root, 'BraTS20_Training_021', { maskName: null });
      await writeNifti(join(good, 'BraTS20_Training_021_seg.nii.gz'), { dims: DIMS, affine: AFFINE, datatype: 'int16', data: Int16Array.from(labels) });
      const bad = await writeCase(root, 'BraTS20_Training_022', { maskName: null });
      const halves = Float32Array.from({ length: count }, (_, n) => labels[n] * 2);
      halves[10] = 5; // 2.5 after the 0.5 slope below
      const maskPath = join(bad, 'BraTS20_Training_022_seg.nii');
      await writeNifti(maskPath, { dims: DIMS, affine: AFFINE, datatype: 'float32', data: halves });
      editNifti(maskPath, (b) => { b.writeFloatLE(0.5, 112); return b; });
      const report = await validateDataset(root);
      assert.equal(report.cases[0].ok, true, JSON.stringify(report.cases[0].errors));
      assert.deepEqual(report.cases[0].maskLabelCounts, { 0: count / 2, 1: count / 6, 2: count / 6, 4: count / 6 });
      assert.equal(report.cases[1].ok, false);
      assert.match(formatCaseError('BraTS20_Training_022', report.cases[1].errors[0]), /case BraTS20_Training_022: BraTS20_Training_022_seg\.nii: mask values must be 0, 1, 2 or 4; found 2\.5 \(1 voxel\)/);
    });
  });
});
