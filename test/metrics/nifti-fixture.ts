/**
 * Writes a minimal uncompressed NIfTI-1 uint8 file, independent of core/nifti's writer, so the
 * metrics CLI tests exercise the reader on bytes laid out by the standard itself.
 */
import { writeFileSync } from 'node:fs';

export function writeUint8Nifti(path: string, data: Uint8Array, dims: readonly number[], pixdim: readonly number[]): void {
  const header = Buffer.alloc(352);
  header.writeInt32LE(348, 0);
  header.writeInt16LE(dims.length, 40);
  dims.forEach((d, i) => header.writeInt16LE(d, 42 + 2 * i));
  header.writeInt16LE(2, 70); // DT_UINT8
  header.writeInt16LE(8, 72);
  header.writeFloatLE(1, 76);
  pixdim.forEach((p, i) => header.writeFloatLE(p, 80 + 4 * i));
  header.writeFloatLE(352, 108);
  header.writeUInt8(2, 123); // spatial units: mm
  header.write('n+1\0', 344, 'latin1');
  writeFileSync(path, Buffer.concat([header, Buffer.from(data)]));
}
