// The desktop viewer (Niivue) parses NIfTI with nifti-reader-js: files FedSeg writes must read the same there.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as nifti from 'nifti-reader-js';
import { writeNifti } from '../../core/nifti/index.js';

test('nifti-reader-js reads FedSeg masks and images with the same dims, datatype, affine and voxels', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedseg-nifti-viewer-'));
  try {
    const affine = [[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]];
    const mask = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => [0, 1, 2, 4][i % 4]);
    const image = Float32Array.from({ length: 5 * 4 * 3 * 2 }, (_, i) => i * 0.25 - 3);
    await writeNifti(join(dir, 'mask.nii.gz'), { dims: [5, 4, 3], affine, datatype: 'uint8', data: mask });
    await writeNifti(join(dir, 'image.nii'), { dims: [5, 4, 3, 2], affine, datatype: 'float32', data: image });
    for (const [name, expected, code] of [['mask.nii.gz', mask, 2], ['image.nii', image, 16]] as const) {
      const file = readFileSync(join(dir, name));
      let buffer: ArrayBuffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer;
      if (nifti.isCompressed(buffer)) buffer = nifti.decompress(buffer) as ArrayBuffer;
      assert.ok(nifti.isNIFTI(buffer), name);
      const header = nifti.readHeader(buffer);
      assert.deepEqual(header.dims.slice(1, header.dims[0] + 1), name === 'mask.nii.gz' ? [5, 4, 3] : [5, 4, 3, 2]);
      assert.equal(header.datatypeCode, code);
      assert.deepEqual(header.affine, affine);
      assert.equal(header.description, '');
      const voxels = nifti.readImage(header, buffer);
      const typed = code === 2 ? new Uint8Array(voxels) : new Float32Array(voxels);
      assert.deepEqual(Array.from(typed), Array.from(expected));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
