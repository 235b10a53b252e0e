import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FedSegError } from '../../core/errors.js';
import { readNifti, readNiftiHeader, writeNifti } from '../../core/nifti/index.js';

const AFFINE = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

describe('bad NIfTI input gives one FedSegError naming the file and the reason', () => {
  let dir = '';
  let good: Buffer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedseg-nifti-bad-'));
    await writeNifti(join(dir, 'good.nii'), { dims: [8, 8, 8], affine: AFFINE, datatype: 'int16', data: new Int16Array(512).fill(7) });
    good = readFileSync(join(dir, 'good.nii'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function expectError(name: string, bytes: Uint8Array, reason: RegExp): Promise<void> {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    await assert.rejects(readNifti(path), (err: unknown) => {
      assert.ok(err instanceof FedSegError, `FedSegError, got ${String(err)}`);
      assert.equal(err.where.file, path);
      assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
      assert.match(err.message, reason);
      return true;
    });
  }

  function patched(offset: number, write: (view: DataView) => void): Buffer {
    const copy = Buffer.from(good);
    write(new DataView(copy.buffer, copy.byteOffset + offset));
    return copy;
  }

  test('truncated .nii (voxels cut short) and a file shorter than a header', async () => {
    await expectError('cut.nii', good.subarray(0, good.length - 100), /truncated: 8x8x8 int16 voxels need 1376 bytes, the file has 1276/);
    await expectError('stub.nii', good.subarray(0, 200), /truncated: 200 bytes, the NIfTI-1 header needs 348/);
  });

  test('truncated and corrupt gzip', async () => {
    const gz = gzipSync(good);
    await expectError('cut.nii.gz', gz.subarray(0, gz.length - 20), /truncated gzip stream/);
    const corrupt = Buffer.from(gz);
    corrupt.fill(0xaa, 10, 40);
    await expectError('corrupt.nii.gz', corrupt, /corrupt gzip data/);
  });

  test('not NIfTI at all, bad magic, wrong sizeof_hdr', async () => {
    await expectError('notes.nii', Buffer.from('Patient notes, definitely not an image\n'.repeat(20)), /not a NIfTI file/);
    await expectError('magic.nii', patched(344, (v) => v.setUint32(0, 0x41424344)), /not a NIfTI file: bad magic "ABCD"/);
    await expectError('sizeof.nii', patched(0, (v) => v.setInt32(0, 352, true)), /wrong sizeof_hdr 352: NIfTI-1 needs 348 and NIfTI-2 540/);
    await expectError('pair.nii', patched(344, (v) => v.setUint8(1, 'i'.charCodeAt(0))), /\.hdr\/\.img pair/);
  });

  test('unsupported datatypes name the datatype', async () => {
    await expectError('complex.nii', patched(70, (v) => v.setInt16(0, 32, true)), /unsupported datatype complex64 \(code 32\)/);
    await expectError('rgb.nii', patched(70, (v) => v.setInt16(0, 128, true)), /unsupported datatype rgb24 \(code 128\)/);
    await expectError('weird.nii', patched(70, (v) => v.setInt16(0, 3, true)), /unsupported datatype undefined code 3/);
  });

  test('corrupt dims', async () => {
    await expectError('dim0.nii', patched(40, (v) => v.setInt16(0, 9, true)), /dim\[0\] is 9/);
    await expectError('dimneg.nii', patched(42, (v) => v.setInt16(0, -4, true)), /dim\[1\] is -4/);
  });

  test('missing file and directory', async () => {
    await assert.rejects(readNifti(join(dir, 'nope.nii.gz')), /nope\.nii\.gz: file does not exist/);
    await assert.rejects(readNiftiHeader(join(dir, 'nope.nii')), /nope\.nii: file does not exist/);
    await assert.rejects(readNifti(dir), /is a directory/);
  });

  test('header-only read reports corrupt gzip and bad magic too', async () => {
    const corrupt = gzipSync(good);
    corrupt.fill(0xaa, 10, 40);
    writeFileSync(join(dir, 'hdr-corrupt.nii.gz'), corrupt);
    await assert.rejects(readNiftiHeader(join(dir, 'hdr-corrupt.nii.gz')), /hdr-corrupt\.nii\.gz: corrupt gzip data/);
    writeFileSync(join(dir, 'hdr-text.nii.gz'), gzipSync(Buffer.from('hello')));
    await assert.rejects(readNiftiHeader(join(dir, 'hdr-text.nii.gz')), /hdr-text\.nii\.gz: not a NIfTI file: sizeof_hdr/);
  });

  test('writer rejects data that does not match dims or datatype and leaves nothing behind', async () => {
    const before = readdirSync(dir).length;
    await assert.rejects(
      writeNifti(join(dir, 'short.nii.gz'), { dims: [4, 4, 4], affine: AFFINE, datatype: 'uint8', data: new Uint8Array(63) }),
      /short\.nii\.gz: field data: data has 63 values but dims 4x4x4 need 64/,
    );
    await assert.rejects(
      writeNifti(join(dir, 'range.nii'), { dims: [2, 1, 1], affine: AFFINE, datatype: 'uint8', data: [1, 300] }),
      /value 300 at voxel 1 does not fit uint8/,
    );
    await assert.rejects(
      writeNifti(join(dir, 'pix.nii'), { dims: [1, 1, 1], affine: AFFINE, datatype: 'uint8', data: [1], pixdim: [2, 1, 1] }),
      /pixdim\[1\] 2 disagrees with the affine/,
    );
    await assert.rejects(writeNifti(join(dir, 'x.img'), { dims: [1, 1, 1], affine: AFFINE, datatype: 'uint8', data: [1] }), /must end in \.nii or \.nii\.gz/);
    await assert.rejects(writeNifti(join(dir, 'no-such-dir', 'x.nii'), { dims: [1, 1, 1], affine: AFFINE, datatype: 'uint8', data: [1] }), /cannot write NIfTI file/);
    assert.equal(readdirSync(dir).length, before, 'no partial or temporary files');
  });
});

describe('reader details', () => {
  test('vox_offset beyond 352 (an extension) is honoured and extensions are flagged, not read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedseg-nifti-ext-'));
    try {
      const path = join(dir, 'a.nii');
      const data = Int16Array.from({ length: 24 }, (_, i) => i - 12);
      await writeNifti(path, { dims: [4, 3, 2], affine: AFFINE, datatype: 'int16', data });
      const plain = readFileSync(path);
      const extension = Buffer.alloc(32);
      extension.writeInt32LE(32, 0);
      extension.writeInt32LE(6, 4);
      extension.write('secret patient comment', 8, 'latin1');
      const withExt = Buffer.concat([plain.subarray(0, 348), Buffer.from([1, 0, 0, 0]), extension, plain.subarray(352)]);
      withExt.writeFloatLE(352 + 32, 108);
      writeFileSync(join(dir, 'ext.nii.gz'), gzipSync(withExt));
      const image = await readNifti(join(dir, 'ext.nii.gz'));
      assert.equal(image.header.voxOffset, 384);
      assert.equal(image.header.hasExtensions, true);
      assert.deepEqual(Array.from(image.data as Int16Array), Array.from(data));
      assert.equal(JSON.stringify(image.header).includes('secret'), false);
      // Writing it back carries neither the extension nor any text.
      await writeNifti(join(dir, 'out.nii.gz'), { dims: image.header.dims, affine: image.header.affine, datatype: 'int16', data: image.data as Int16Array });
      const out = gunzipSync(readFileSync(join(dir, 'out.nii.gz')));
      assert.equal(out.length, 352 + 48);
      assert.equal(out.includes(Buffer.from('secret')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('header text fields are kept apart from the header', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedseg-nifti-text-'));
    try {
      const path = join(dir, 'a.nii');
      await writeNifti(path, { dims: [2, 2, 2], affine: AFFINE, datatype: 'uint8', data: new Uint8Array(8) });
      const bytes = readFileSync(path);
      bytes.write('Doe^John 1970', 148, 'latin1');
      bytes.write('MRN 12345', 228, 'latin1');
      writeFileSync(path, bytes);
      const image = await readNifti(path);
      assert.equal(image.text.descrip, 'Doe^John 1970');
      assert.equal(image.text.auxFile, 'MRN 12345');
      assert.equal(JSON.stringify(image.header).includes('Doe'), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
