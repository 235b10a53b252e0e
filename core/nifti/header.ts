/**
 * NIfTI-1 / NIfTI-2 header parsing. FedSeg parses the header itself rather than through
 * nifti-reader-js because that library prefers the qform whenever qform_code > sform_code (nibabel
 * and FedSeg prefer the sform), hides srow_* in that case, and mis-reads big-endian 64-bit fields.
 * Text fields that can carry patient identifiers live in `NiftiTextFields`, apart from the header,
 * so that a header can be logged, shown or sent without them.
 */
import { FedSegError } from '../errors.js';
import { type Affine, baseAffine, identityAffine, qformToAffine } from './affine.js';
import { datatypeByCode, describeDatatypeCode, type NiftiDatatypeName } from './datatypes.js';

export const NIFTI1_HEADER_BYTES = 348;
export const NIFTI2_HEADER_BYTES = 540;
/** Bytes needed to parse any header (NIfTI-2 header + 4-byte extension flag). */
export const MAX_HEADER_BYTES = NIFTI2_HEADER_BYTES + 4;

const SPATIAL_UNITS: Record<number, string> = { 0: 'unknown', 1: 'm', 2: 'mm', 3: 'um' };
const TEMPORAL_UNITS: Record<number, string> = { 0: 'unknown', 8: 's', 16: 'ms', 24: 'us', 32: 'Hz', 40: 'ppm', 48: 'rad/s' };

export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** Size of each axis, dim[1..dim[0]] (e.g. [240, 240, 155] or [128, 128, 128, 3]). */
  dims: number[];
  /** Voxel size of each axis, pixdim[1..dim[0]] (mm for the spatial axes when units are mm). */
  pixdim: number[];
  datatype: { code: number; name: NiftiDatatypeName; bytesPerVoxel: number };
  /** Byte offset of the first voxel in the (decompressed) file. */
  voxOffset: number;
  /** Voxel count (product of dims) and byte length of the voxel data. */
  voxelCount: number;
  dataBytes: number;
  /** scl_slope / scl_inter; null when they change nothing: slope 0 or not finite (as the standard says), or 1 and 0. */
  scaling: { slope: number; inter: number } | null;
  /** Voxel (i, j, k) to world (mm) 4x4 matrix, chosen as nibabel's `get_best_affine`. */
  affine: Affine;
  affineSource: 'sform' | 'qform' | 'pixdim';
  sformCode: number;
  qformCode: number;
  /** The sform (srow_*) and quaternion affines as stored, whether or not their codes are set. */
  sform: Affine;
  qform: Affine;
  units: { spatial: string; temporal: string };
  /** Whether the extension flag is set (extensions are never read or copied). */
  hasExtensions: boolean;
}

/** Free-text header fields that can carry identifiers; never forwarded, never written by FedSeg. */
export interface NiftiTextFields {
  descrip: string;
  auxFile: string;
  intentName: string;
  /** NIfTI-1 only (unused Analyze fields). */
  dbName: string;
  dataType: string;
}

export interface ParsedHeader {
  header: NiftiHeader;
  text: NiftiTextFields;
}

/** Parses the header at the start of `bytes` (the decompressed file or at least its first MAX_HEADER_BYTES). */
export function parseHeader(bytes: Uint8Array, file: string): ParsedHeader {
  if (bytes.length < 4) {
    throw new FedSegError(`truncated or not NIfTI: ${bytes.length} bytes, a NIfTI header needs ${NIFTI1_HEADER_BYTES}`, { file });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = detectVersion(view, bytes, file);
  const needed = version.sizeofHdr;
  if (bytes.length < needed) {
    throw new FedSegError(`truncated: ${bytes.length} bytes, the NIfTI-${version.version} header needs ${needed}`, { file });
  }
  return version.version === 1 ? parseNifti1(view, bytes, version.littleEndian, file) : parseNifti2(view, bytes, version.littleEndian, file);
}

function detectVersion(view: DataView, bytes: Uint8Array, file: string): { version: 1 | 2; littleEndian: boolean; sizeofHdr: number } {
  const le = view.getInt32(0, true);
  const be = view.getInt32(0, false);
  for (const [size, version] of [[NIFTI1_HEADER_BYTES, 1], [NIFTI2_HEADER_BYTES, 2]] as const) {
    if (le === size || be === size) return { version, littleEndian: le === size, sizeofHdr: size };
  }
  const hasMagic = ascii(bytes, 344, 3) === 'n+1' || ascii(bytes, 4, 3) === 'n+2';
  if (hasMagic) {
    throw new FedSegError(`wrong sizeof_hdr ${le}: NIfTI-1 needs 348 and NIfTI-2 540`, { file, field: 'sizeof_hdr' });
  }
  throw new FedSegError(`not a NIfTI file: sizeof_hdr is ${le} (not 348 or 540) and there is no NIfTI magic`, { file });
}

function parseNifti1(view: DataView, bytes: Uint8Array, le: boolean, file: string): ParsedHeader {
  checkMagic(ascii(bytes, 344, 4), 1, file);
  const ndim = view.getInt16(40, le);
  const rawDims = Array.from({ length: 8 }, (_, i) => view.getInt16(40 + 2 * i, le));
  const rawPixdim = Array.from({ length: 8 }, (_, i) => view.getFloat32(76 + 4 * i, le));
  const srowAt = (offset: number) => Array.from({ length: 4 }, (_, i) => view.getFloat32(offset + 4 * i, le));
  const xyzt = view.getUint8(123);
  return finish({
    version: 1, le, file, ndim, rawDims, rawPixdim,
    datatypeCode: view.getInt16(70, le),
    voxOffset: view.getFloat32(108, le),
    slope: view.getFloat32(112, le),
    inter: view.getFloat32(116, le),
    qformCode: view.getInt16(252, le),
    sformCode: view.getInt16(254, le),
    quatern: [256, 260, 264, 268, 272, 276].map((o) => view.getFloat32(o, le)),
    srow: [srowAt(280), srowAt(296), srowAt(312)],
    xyzt,
    hasExtensions: bytes.length >= 349 && bytes[348] !== 0,
    text: {
      dataType: ascii(bytes, 4, 10), dbName: ascii(bytes, 14, 18), descrip: ascii(bytes, 148, 80),
      auxFile: ascii(bytes, 228, 24), intentName: ascii(bytes, 328, 16),
    },
  });
}

function parseNifti2(view: DataView, bytes: Uint8Array, le: boolean, file: string): ParsedHeader {
  checkMagic(ascii(bytes, 4, 4), 2, file);
  const int64 = (offset: number) => Number(view.getBigInt64(offset, le));
  const rawDims = Array.from({ length: 8 }, (_, i) => int64(16 + 8 * i));
  const rawPixdim = Array.from({ length: 8 }, (_, i) => view.getFloat64(104 + 8 * i, le));
  const srowAt = (offset: number) => Array.from({ length: 4 }, (_, i) => view.getFloat64(offset + 8 * i, le));
  return finish({
    version: 2, le, file, ndim: rawDims[0], rawDims, rawPixdim,
    datatypeCode: view.getInt16(12, le),
    voxOffset: int64(168),
    slope: view.getFloat64(176, le),
    inter: view.getFloat64(184, le),
    qformCode: view.getInt32(344, le),
    sformCode: view.getInt32(348, le),
    quatern: [352, 360, 368, 376, 384, 392].map((o) => view.getFloat64(o, le)),
    srow: [srowAt(400), srowAt(432), srowAt(464)],
    xyzt: view.getInt32(500, le),
    hasExtensions: bytes.length >= 541 && bytes[540] !== 0,
    text: { dataType: '', dbName: '', descrip: ascii(bytes, 240, 80), auxFile: ascii(bytes, 320, 24), intentName: ascii(bytes, 508, 16) },
  });
}

interface RawFields {
  version: 1 | 2; le: boolean; file: string; ndim: number; rawDims: number[]; rawPixdim: number[];
  datatypeCode: number; voxOffset: number; slope: number; inter: number; qformCode: number; sformCode: number;
  quatern: number[]; srow: number[][]; xyzt: number; hasExtensions: boolean; text: NiftiTextFields;
}

function finish(raw: RawFields): ParsedHeader {
  const { file } = raw;
  if (!(raw.ndim >= 1 && raw.ndim <= 7)) {
    throw new FedSegError(`dim[0] is ${raw.ndim}, must be 1..7 (corrupt header?)`, { file, field: 'dim' });
  }
  const dims = raw.rawDims.slice(1, raw.ndim + 1);
  dims.forEach((size, axis) => {
    if (!(size >= 1)) throw new FedSegError(`dim[${axis + 1}] is ${size}, must be at least 1`, { file, field: 'dim' });
  });
  const pixdim = raw.rawPixdim.slice(1, raw.ndim + 1);
  const info = datatypeByCode(raw.datatypeCode);
  if (!info) {
    throw new FedSegError(
      `unsupported datatype ${describeDatatypeCode(raw.datatypeCode)} (code ${raw.datatypeCode}); FedSeg reads uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32 and float64`,
      { file, field: 'datatype' },
    );
  }
  const headerBytes = raw.version === 1 ? NIFTI1_HEADER_BYTES : NIFTI2_HEADER_BYTES;
  // A single-file NIfTI's data cannot start inside the header; nibabel applies the same minimum.
  if (!Number.isFinite(raw.voxOffset)) throw new FedSegError(`vox_offset is ${raw.voxOffset}`, { file, field: 'vox_offset' });
  const voxOffset = Math.max(Math.floor(raw.voxOffset), headerBytes + 4);
  const scaling = scalingOf(raw.slope, raw.inter, file);
  const voxelCount = dims.reduce((a, b) => a * b, 1);
  const qform = qformToAffine({
    b: raw.quatern[0], c: raw.quatern[1], d: raw.quatern[2],
    offset: [raw.quatern[3], raw.quatern[4], raw.quatern[5]],
    zooms: [raw.rawPixdim[1], raw.rawPixdim[2], raw.rawPixdim[3]],
    qfac: raw.rawPixdim[0],
  });
  const sform = identityAffine();
  for (let row = 0; row < 3; row++) sform[row] = raw.srow[row].slice();
  const [affine, affineSource] = raw.sformCode > 0
    ? [sform, 'sform' as const]
    : raw.qformCode > 0 ? [qform, 'qform' as const] : [baseAffine(dims, pixdim), 'pixdim' as const];
  return {
    header: {
      version: raw.version, littleEndian: raw.le, dims, pixdim,
      datatype: { code: info.code, name: info.name, bytesPerVoxel: info.bytes },
      voxOffset, voxelCount, dataBytes: voxelCount * info.bytes, scaling,
      affine: affine.map((row) => row.slice()), affineSource,
      sformCode: raw.sformCode, qformCode: raw.qformCode, sform, qform,
      units: { spatial: SPATIAL_UNITS[raw.xyzt & 7] ?? 'unknown', temporal: TEMPORAL_UNITS[raw.xyzt & 56] ?? 'unknown' },
      hasExtensions: raw.hasExtensions,
    },
    text: raw.text,
  };
}

function scalingOf(slope: number, inter: number, file: string): NiftiHeader['scaling'] {
  if (slope === 0 || !Number.isFinite(slope)) return null;
  if (!Number.isFinite(inter)) throw new FedSegError(`scl_slope is ${slope} but scl_inter is ${inter}`, { file, field: 'scl_inter' });
  return slope === 1 && inter === 0 ? null : { slope, inter };
}

function checkMagic(magic: string, version: 1 | 2, file: string): void {
  if (magic === `n+${version}`) return;
  if (magic === `ni${version}`) {
    throw new FedSegError(`a NIfTI-${version} .hdr/.img pair header; FedSeg reads single-file .nii / .nii.gz only`, { file, field: 'magic' });
  }
  throw new FedSegError(`not a NIfTI file: bad magic ${JSON.stringify(magic)} (expected "n+${version}")`, { file, field: 'magic' });
}

/** Latin-1 text of a fixed-size, NUL-padded header field. */
function ascii(bytes: Uint8Array, offset: number, length: number): string {
  const end = Math.min(offset + length, bytes.length);
  let text = '';
  for (let i = offset; i < end && bytes[i] !== 0; i++) text += String.fromCharCode(bytes[i]);
  return text;
}
