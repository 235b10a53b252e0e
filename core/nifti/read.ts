/**
 * Reading .nii / .nii.gz files into typed arrays. Gzip is detected by its magic bytes (not the file
 * name) and inflated with node:zlib in one call; voxels are exposed as a typed-array view when
 * the bytes are aligned and native-endian, else copied once and byte-swapped in bulk.
 */
import { open, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { createGunzip, gunzipSync } from 'node:zlib';
import { FedSegError } from '../errors.js';
import { datatypeByCode, type NiftiTypedArray } from './datatypes.js';
import { MAX_HEADER_BYTES, type NiftiHeader, type NiftiTextFields, parseHeader } from './header.js';

export interface NiftiImage {
  file: string;
  /** Whether the file was gzip-compressed. */
  compressed: boolean;
  header: NiftiHeader;
  /** Identifying free text from the header: keep it local, never forward or copy it. */
  text: NiftiTextFields;
  /** Raw (unscaled) voxels in NIfTI order: i fastest, then j, k, then higher dims. */
  data: NiftiTypedArray;
}

export interface NiftiHeaderInfo {
  file: string;
  compressed: boolean;
  header: NiftiHeader;
  text: NiftiTextFields;
}

const NATIVE_LITTLE_ENDIAN = endianness() === 'LE';

export async function readNifti(path: string): Promise<NiftiImage> {
  const raw = await readWholeFile(path);
  const compressed = isGzip(raw);
  return decodeNifti(compressed ? gunzip(raw, path) : raw, path, compressed);
}

/** Parses an in-memory, already-decompressed NIfTI file. */
export function decodeNifti(bytes: Uint8Array, file: string, compressed = false): NiftiImage {
  const { header, text } = parseHeader(bytes, file);
  const end = header.voxOffset + header.dataBytes;
  if (bytes.length < end) {
    throw new FedSegError(
      `truncated: ${header.dims.join('x')} ${header.datatype.name} voxels need ${end} bytes${compressed ? ' after decompression' : ''}, the file has ${bytes.length}`,
      { file },
    );
  }
  return { file, compressed, header, text, data: voxelArray(bytes, header) };
}

/** Reads only the header: for gzip files, inflates just the first few hundred bytes. */
export async function readNiftiHeader(path: string): Promise<NiftiHeaderInfo> {
  const handle = await openFile(path);
  let start: Uint8Array;
  try {
    const buffer = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, MAX_HEADER_BYTES, 0);
    start = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const compressed = isGzip(start);
  const bytes = compressed ? await gunzipPrefix(path, MAX_HEADER_BYTES) : start;
  return { file: path, compressed, ...parseHeader(bytes, path) };
}

function voxelArray(bytes: Uint8Array, header: NiftiHeader): NiftiTypedArray {
  const info = datatypeByCode(header.datatype.code);
  if (!info) throw new Error(`unreachable: datatype ${header.datatype.code} passed header parsing`);
  const start = bytes.byteOffset + header.voxOffset;
  const nativeOrder = info.bytes === 1 || header.littleEndian === NATIVE_LITTLE_ENDIAN;
  // A view is only safe when `bytes` owns its whole ArrayBuffer (small Node buffers share a pool).
  const ownsBuffer = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
  if (nativeOrder && ownsBuffer && start % info.bytes === 0) {
    return info.create(bytes.buffer as ArrayBuffer, start, header.voxelCount);
  }
  const owned = new Uint8Array(header.dataBytes);
  owned.set(bytes.subarray(header.voxOffset, header.voxOffset + header.dataBytes));
  if (!nativeOrder) {
    const swapped = Buffer.from(owned.buffer);
    if (info.bytes === 2) swapped.swap16();
    else if (info.bytes === 4) swapped.swap32();
    else swapped.swap64();
  }
  return info.create(owned.buffer, 0, header.voxelCount);
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function gunzip(raw: Buffer, file: string): Buffer {
  try {
    return gunzipSync(raw);
  } catch (err) {
    throw gzipError(err, file);
  }
}

function gzipError(err: unknown, file: string): FedSegError {
  const code = (err as { code?: string }).code;
  const reason = code === 'Z_BUF_ERROR'
    ? 'truncated gzip stream (unexpected end of file)'
    : `corrupt gzip data (${(err as Error).message})`;
  return new FedSegError(reason, { file }, { cause: err });
}

/** Inflates at least `wanted` bytes (or the whole stream if shorter) from the start of a gzip file. */
async function gunzipPrefix(path: string, wanted: number): Promise<Buffer> {
  const handle = await openFile(path);
  const gunzipStream = createGunzip();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const source = handle.createReadStream({ highWaterMark: 16 * 1024, autoClose: false });
    const done = new Promise<void>((resolve, reject) => {
      gunzipStream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        total += chunk.length;
        if (total >= wanted) resolve();
      });
      gunzipStream.on('end', resolve);
      gunzipStream.on('error', (err) => (total >= wanted ? resolve() : reject(gzipError(err, path))));
      source.on('error', reject);
    });
    source.pipe(gunzipStream);
    await done;
    source.unpipe(gunzipStream);
    source.destroy();
  } finally {
    gunzipStream.destroy();
    await handle.close();
  }
  return Buffer.concat(chunks, total);
}

async function readWholeFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw fileError(err, path);
  }
}

async function openFile(path: string) {
  try {
    return await open(path, 'r');
  } catch (err) {
    throw fileError(err, path);
  }
}

function fileError(err: unknown, file: string): FedSegError {
  const code = (err as { code?: string }).code;
  const reason = code === 'ENOENT' ? 'file does not exist'
    : code === 'EISDIR' ? 'is a directory, not a NIfTI file'
      : code === 'EACCES' ? 'permission denied'
        : `cannot read file (${(err as Error).message})`;
  return new FedSegError(reason, { file }, { cause: err });
}
