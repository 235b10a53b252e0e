/**
 * The one in-memory layout FedSeg's models consume, and conversions from/to NIfTI storage order.
 *
 * NIfTI stores voxels with i fastest: a 3D volume of dims (nx, ny, nz) at index
 * `i + nx * (j + ny * k)`, a 4D one of dims (nx, ny, nz, nc) at `i + nx * (j + ny * (k + nz * c))`.
 *
 * Models use row-major, channel-last ("NDHWC" with D = i, H = j, W = k): a `CaseTensor` of shape
 * [ni, nj, nk, nc] holds voxel (i, j, k) channel c at `((i * nj + j) * nk + k) * nc + c`, so
 * `tf.tensor5d(t.data, [1, ...t.shape])` is the model input and `t.data[...]` matches what
 * nibabel's `img.get_fdata()[i, j, k, c]` returns for the written image.nii.gz.
 */

/** Any typed array a NIfTI reader can hand back. */
export type NumericArray =
  | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

/** A scalar volume in NIfTI storage order (i fastest). */
export interface NiftiVolume<T extends NumericArray = NumericArray> {
  dims: [number, number, number];
  data: T;
}

/** Row-major [i][j][k][c] float image: the model's NDHWC input without the batch axis. */
export interface CaseTensor {
  shape: [number, number, number, number];
  data: Float32Array;
}

/** Row-major [i][j][k] class volume (classes 0..3), the layout of a model's argmax output. */
export interface ClassVolume {
  shape: [number, number, number];
  data: Uint8Array;
}

export function createCaseTensor(shape: [number, number, number, number]): CaseTensor {
  return { shape, data: new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]) };
}

/** Index of (i, j, k, c) in a CaseTensor's data. */
export function tensorIndex(shape: readonly number[], i: number, j: number, k: number, c: number): number {
  return ((i * shape[1] + j) * shape[2] + k) * shape[3] + c;
}

/** Index of (i, j, k) in a ClassVolume's data. */
export function classIndex(shape: readonly number[], i: number, j: number, k: number): number {
  return (i * shape[1] + j) * shape[2] + k;
}

/** Index of (i, j, k) in NIfTI storage order. */
export function niftiIndex(dims: readonly number[], i: number, j: number, k: number): number {
  return i + dims[0] * (j + dims[1] * k);
}

/** CaseTensor -> data of a 4D NIfTI with dims (ni, nj, nk, nc). */
export function tensorToNiftiOrder(tensor: CaseTensor): Float32Array {
  const [ni, nj, nk, nc] = tensor.shape;
  const out = new Float32Array(tensor.data.length);
  const src = tensor.data;
  let n = 0;
  for (let c = 0; c < nc; c++) {
    for (let k = 0; k < nk; k++) {
      for (let j = 0; j < nj; j++) {
        let s = (j * nk + k) * nc + c;
        const stride = nj * nk * nc;
        for (let i = 0; i < ni; i++, s += stride) out[n++] = src[s];
      }
    }
  }
  return out;
}

/** Data of a 4D NIfTI with dims (ni, nj, nk, nc) -> CaseTensor. */
export function niftiOrderToTensor(data: ArrayLike<number>, dims: readonly [number, number, number, number]): CaseTensor {
  const tensor = createCaseTensor([dims[0], dims[1], dims[2], dims[3]]);
  const [ni, nj, nk, nc] = dims;
  const stride = nj * nk * nc;
  let n = 0;
  for (let c = 0; c < nc; c++) {
    for (let k = 0; k < nk; k++) {
      for (let j = 0; j < nj; j++) {
        let d = (j * nk + k) * nc + c;
        for (let i = 0; i < ni; i++, d += stride) tensor.data[d] = data[n++];
      }
    }
  }
  return tensor;
}

/** ClassVolume -> data of a 3D NIfTI with dims (ni, nj, nk). */
export function classesToNiftiOrder(volume: ClassVolume): Uint8Array {
  const [ni, nj, nk] = volume.shape;
  const out = new Uint8Array(volume.data.length);
  let n = 0;
  for (let k = 0; k < nk; k++) {
    for (let j = 0; j < nj; j++) {
      for (let i = 0; i < ni; i++) out[n++] = volume.data[(i * nj + j) * nk + k];
    }
  }
  return out;
}

/** Data of a 3D NIfTI with dims (ni, nj, nk) -> ClassVolume (values copied as they are). */
export function niftiOrderToClasses(data: ArrayLike<number>, dims: readonly [number, number, number]): ClassVolume {
  const [ni, nj, nk] = dims;
  const out = new Uint8Array(ni * nj * nk);
  let n = 0;
  for (let k = 0; k < nk; k++) {
    for (let j = 0; j < nj; j++) {
      for (let i = 0; i < ni; i++) out[(i * nj + j) * nk + k] = data[n++];
    }
  }
  return { shape: [ni, nj, nk], data: out };
}
