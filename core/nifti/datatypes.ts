/**
 * NIfTI datatype codes FedSeg can hold as voxel values. Codes and byte sizes are from nifti1.h.
 * Complex, RGB, binary and float128 volumes are not MRI intensities or masks and are rejected.
 */
export type NiftiDatatypeName =
  | 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64';

export type NiftiTypedArray =
  | Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

interface DatatypeInfo {
  code: number;
  name: NiftiDatatypeName;
  bytes: 1 | 2 | 4 | 8;
  create: (buffer: ArrayBuffer, byteOffset: number, length: number) => NiftiTypedArray;
}

export const DATATYPES: readonly DatatypeInfo[] = [
  { code: 2, name: 'uint8', bytes: 1, create: (b, o, n) => new Uint8Array(b, o, n) },
  { code: 4, name: 'int16', bytes: 2, create: (b, o, n) => new Int16Array(b, o, n) },
  { code: 8, name: 'int32', bytes: 4, create: (b, o, n) => new Int32Array(b, o, n) },
  { code: 16, name: 'float32', bytes: 4, create: (b, o, n) => new Float32Array(b, o, n) },
  { code: 64, name: 'float64', bytes: 8, create: (b, o, n) => new Float64Array(b, o, n) },
  { code: 256, name: 'int8', bytes: 1, create: (b, o, n) => new Int8Array(b, o, n) },
  { code: 512, name: 'uint16', bytes: 2, create: (b, o, n) => new Uint16Array(b, o, n) },
  { code: 768, name: 'uint32', bytes: 4, create: (b, o, n) => new Uint32Array(b, o, n) },
  { code: 1024, name: 'int64', bytes: 8, create: (b, o, n) => new BigInt64Array(b, o, n) },
  { code: 1280, name: 'uint64', bytes: 8, create: (b, o, n) => new BigUint64Array(b, o, n) },
];

/** Names of the codes the format defines but FedSeg refuses, so the error can say what the file holds. */
const UNSUPPORTED_NAMES: Record<number, string> = {
  0: 'unknown (0)', 1: 'binary (1 bit)', 32: 'complex64', 128: 'rgb24', 1536: 'float128',
  1792: 'complex128', 2048: 'complex256', 2304: 'rgba32',
};

export function datatypeByCode(code: number): DatatypeInfo | undefined {
  return DATATYPES.find((d) => d.code === code);
}

export function datatypeByName(name: NiftiDatatypeName): DatatypeInfo {
  const info = DATATYPES.find((d) => d.name === name);
  if (!info) throw new Error(`unknown datatype name ${name}`);
  return info;
}

/** Human name of any datatype code, supported or not. */
export function describeDatatypeCode(code: number): string {
  return datatypeByCode(code)?.name ?? UNSUPPORTED_NAMES[code] ?? `undefined code ${code}`;
}
