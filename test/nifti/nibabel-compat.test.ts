import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readNifti, readNiftiHeader, toFloat32, valueStats, writeNifti } from '../../core/nifti/index.js';
import { assertAffineClose, closeRel, nibabelMissingReason, runPython } from './python.js';

const missing = nibabelMissingReason();
if (missing) console.log(`# skipping nibabel comparisons: ${missing}`);

interface ReferenceFile {
  file: string;
  variant: Record<string, unknown>;
  dims: number[];
  datatype: string;
  affine: number[][];
  min: number;
  max: number;
  mean: number;
  samples: [number, number, number, number][];
  scaling: [number, number] | null;
}

describe('files written by nibabel read the same in FedSeg', { skip: missing ?? false }, () => {
  let dir = '';
  let manifest: ReferenceFile[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedseg-nifti-ref-'));
    const script = fileURLToPath(new URL('./make_reference_files.py', import.meta.url));
    manifest = JSON.parse(runPython([script, dir])) as ReferenceFile[];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every datatype, endianness, gzip and scaling variant, NIfTI-1 and NIfTI-2', async () => {
    const seen = new Set<string>();
    assert.ok(manifest.length >= 80, `expected the full matrix of reference files, got ${manifest.length}`);
    for (const ref of manifest) {
      const image = await readNifti(join(dir, ref.file));
      const where = `${ref.file} ${JSON.stringify(ref.variant)}`;
      assert.deepEqual(image.header.dims, ref.dims, where);
      assert.equal(image.header.datatype.name, ref.datatype, where);
      assert.equal(image.compressed, ref.file.endsWith('.gz'), where);
      assert.equal(image.header.littleEndian, ref.variant.endian === 'le', where);
      assertAffineClose(image.header.affine, ref.affine);
      const isIdentity = ref.scaling === null || (ref.scaling[0] === 1 && ref.scaling[1] === 0);
      if (isIdentity) assert.equal(image.header.scaling, null, where);
      else assert.deepEqual([image.header.scaling?.slope, image.header.scaling?.inter], ref.scaling, where);
      const stats = valueStats(image);
      for (const key of ['min', 'max', 'mean'] as const) {
        assert.ok(closeRel(stats[key], ref[key], 1e-5), `${where}: ${key} ${stats[key]} vs nibabel ${ref[key]}`);
      }
      const values = toFloat32(image);
      const [nx, ny] = ref.dims;
      for (const [i, j, k, expected] of ref.samples) {
        const actual = values[i + nx * (j + ny * k)];
        assert.ok(closeRel(actual, expected, 1e-6), `${where}: voxel (${i},${j},${k}) ${actual} vs nibabel ${expected}`);
      }
      seen.add(`${ref.variant.datatype}/${ref.variant.endian}/${ref.variant.scaled}/${ref.variant.gzip}`);
    }
    assert.equal(seen.size, 10 * 2 * 2 * 2, 'all 80 datatype x endian x scaling x gzip combinations were checked');
  });

  test('header-only read agrees with the full read without inflating the voxels', async () => {
    for (const name of ['int16_be_scaled.nii.gz', 'float64_le_raw.nii', 'nifti2_be.nii.gz', 'affine_none.nii']) {
      const full = await readNifti(join(dir, name));
      const head = await readNiftiHeader(join(dir, name));
      assert.deepEqual(head.header, full.header, name);
    }
  });
});

describe('files FedSeg writes read the same in nibabel', { skip: missing ?? false }, () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'fedseg-nifti-write-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const theta = 0.4;
  const cases = [
    {
      name: 'mask.nii.gz', datatype: 'uint8' as const, dims: [6, 5, 4],
      affine: [[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]], qformExpected: true,
      fill: (i: number) => [0, 1, 2, 4][i % 4],
    },
    {
      name: 'image.nii', datatype: 'int16' as const, dims: [6, 5, 4],
      affine: [[1.2 * Math.cos(theta), -Math.sin(theta), 0, -10.5], [1.2 * Math.sin(theta), Math.cos(theta), 0, 20], [0, 0, -2, 30], [0, 0, 0, 1]],
      qformExpected: true, fill: (i: number) => (i * 977) % 65536 - 32768,
    },
    {
      name: 'channels.nii.gz', datatype: 'float32' as const, dims: [5, 4, 3, 3],
      affine: [[1, 0, 0, -56], [0, 1, 0, -56], [0, 0, 1, -13], [0, 0, 0, 1]], qformExpected: true,
      fill: (i: number) => Math.sin(i) * 1000 + 0.125,
    },
    {
      name: 'sheared.nii', datatype: 'float32' as const, dims: [4, 4, 4],
      affine: [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], qformExpected: false,
      fill: (i: number) => i / 7,
    },
  ];

  for (const c of cases) {
    test(`${c.name}: ${c.datatype} ${c.dims.join('x')} values, affine, qform and empty text fields`, async () => {
      const count = c.dims.reduce((a, b) => a * b, 1);
      const values = Array.from({ length: count }, (_, i) => c.fill(i));
      const data = c.datatype === 'uint8' ? Uint8Array.from(values) : c.datatype === 'int16' ? Int16Array.from(values) : Float32Array.from(values);
      const path = join(dir, c.name);
      await writeNifti(path, { dims: c.dims, affine: c.affine, datatype: c.datatype, data });
      const rawPath = join(dir, `${c.name}.raw`);
      writeFileSync(rawPath, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      const report = JSON.parse(runPython(['-c', NIBABEL_CHECK, path, rawPath, c.datatype, JSON.stringify(c.dims)])) as {
        shape: number[]; dtype: string; affine: number[][]; qform: number[][]; qformCode: number; sformCode: number;
        equal: boolean; text: string[]; extensions: number; zooms: number[]; xyztUnits: string; diagnosis: string;
      };
      assert.deepEqual(report.shape, c.dims);
      assert.equal(report.dtype, c.datatype);
      assert.ok(report.equal, 'voxel values identical');
      assertAffineClose(report.affine, c.affine);
      assert.equal(report.sformCode, 1);
      assert.equal(report.qformCode, c.qformExpected ? 1 : 0);
      if (c.qformExpected) assertAffineClose(report.qform, c.affine);
      assert.deepEqual(report.text, ['', '', '', '', '']);
      assert.equal(report.extensions, 0);
      assert.equal(report.xyztUnits, 'mm');
      assert.equal(report.diagnosis, '', 'nibabel finds no header problems');
      const back = await readNifti(path);
      assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(data));
      assertAffineClose(back.header.affine, c.affine);
    });
  }
});

const NIBABEL_CHECK = `
import json, sys
import numpy as np, nibabel as nib
path, raw, dtype, dims = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
img = nib.load(path)
h = img.header
expected = np.fromfile(raw, dtype=dtype).reshape(dims, order='F')
actual = np.asanyarray(img.dataobj)
print(json.dumps({
  'shape': list(img.shape), 'dtype': img.get_data_dtype().name, 'affine': img.affine.tolist(),
  'qform': h.get_qform().tolist(), 'qformCode': int(h['qform_code']), 'sformCode': int(h['sform_code']),
  'equal': bool(actual.dtype == expected.dtype and np.array_equal(actual, expected)),
  'text': [h[f].item().decode('latin1') for f in ('descrip', 'aux_file', 'intent_name', 'db_name', 'data_type')],
  'extensions': len(h.extensions), 'zooms': [float(z) for z in h.get_zooms()], 'xyztUnits': h.get_xyzt_units()[0],
  'diagnosis': nib.Nifti1Header.diagnose_binaryblock(h.binaryblock),
}))
`;
