import { NUM_CLASSES } from '../brats/labels.js';
import { FedSegError } from '../errors.js';
import { createCaseTensor, type CaseTensor, type ClassVolume } from './layout.js';
import type { PreprocessedCase } from './pipeline.js';

/**
 * Reduced-size training data (e.g. the 128^3 crop at 32^3 for the demo on CPUs): the image is
 * average-pooled over `factor`^3 blocks, the classes take each block's most frequent class
 * (ties go to the higher class, so thin enhancing rims are not erased), and the affine grows its
 * voxel size by `factor` with the origin moved to the first block's centre.
 */
export function downsampleCase(item: PreprocessedCase, factor: number): PreprocessedCase {
  if (factor === 1) return item;
  const image = averagePool(item.image, factor);
  return {
    ...item,
    image,
    classes: item.classes ? modePool(item.classes, factor) : undefined,
    affine: scaleAffine(item.affine, factor),
  };
}

/** Average over factor^3 blocks; each axis must be divisible by `factor`. */
export function averagePool(tensor: CaseTensor, factor: number): CaseTensor {
  const [ni, nj, nk, nc] = tensor.shape;
  const [oi, oj, ok] = pooledShape([ni, nj, nk], factor);
  const out = createCaseTensor([oi, oj, ok, nc]);
  const src = tensor.data;
  for (let i = 0; i < ni; i++) {
    const bi = Math.floor(i / factor);
    for (let j = 0; j < nj; j++) {
      const bj = Math.floor(j / factor);
      for (let k = 0; k < nk; k++) {
        const s = ((i * nj + j) * nk + k) * nc;
        const d = ((bi * oj + bj) * ok + Math.floor(k / factor)) * nc;
        for (let c = 0; c < nc; c++) out.data[d + c] += src[s + c];
      }
    }
  }
  const inverse = 1 / factor ** 3;
  for (let n = 0; n < out.data.length; n++) out.data[n] *= inverse;
  return out;
}

/** Most frequent class per factor^3 block, ties to the higher class. */
export function modePool(volume: ClassVolume, factor: number): ClassVolume {
  const [ni, nj, nk] = volume.shape;
  const shape = pooledShape([ni, nj, nk], factor);
  const classes = NUM_CLASSES;
  const counts = new Uint32Array(shape[0] * shape[1] * shape[2] * classes);
  for (let i = 0; i < ni; i++) {
    const bi = Math.floor(i / factor);
    for (let j = 0; j < nj; j++) {
      const row = (bi * shape[1] + Math.floor(j / factor)) * shape[2];
      for (let k = 0; k < nk; k++) counts[(row + Math.floor(k / factor)) * classes + volume.data[(i * nj + j) * nk + k]]++;
    }
  }
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let n = 0; n < data.length; n++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (counts[n * classes + c] >= counts[n * classes + best]) best = c;
    data[n] = best;
  }
  return { shape, data };
}

/** Nearest-neighbour upsampling of a class volume by `factor`: puts a reduced-size prediction back on the crop grid. */
export function upsampleClasses(volume: ClassVolume, factor: number): ClassVolume {
  const [ni, nj, nk] = volume.shape;
  const shape: [number, number, number] = [ni * factor, nj * factor, nk * factor];
  const data = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < shape[0]; i++) {
    for (let j = 0; j < shape[1]; j++) {
      const src = (Math.floor(i / factor) * nj + Math.floor(j / factor)) * nk;
      const dst = (i * shape[1] + j) * shape[2];
      for (let k = 0; k < shape[2]; k++) data[dst + k] = volume.data[src + Math.floor(k / factor)];
    }
  }
  return { shape, data };
}

/**
 * Argmax over classes of the probabilities trilinearly upsampled by `factor` (half-voxel aligned
 * like align_corners=False; edges clamp). `probs` is row-major [i][j][k][class].
 */
export function upsampleArgmax(probs: Float32Array, shape: readonly [number, number, number], numClasses: number, factor: number): ClassVolume {
  const [si, sj, sk] = shape;
  const [ni, nj, nk] = [si * factor, sj * factor, sk * factor];
  const taps = (n: number, size: number) => {
    const lo = new Int32Array(n);
    const hi = new Int32Array(n);
    const w = new Float64Array(n);
    for (let d = 0; d < n; d++) {
      const x = Math.min(Math.max((d + 0.5) / factor - 0.5, 0), size - 1);
      lo[d] = Math.floor(x);
      hi[d] = Math.min(lo[d] + 1, size - 1);
      w[d] = x - lo[d];
    }
    return { lo, hi, w };
  };
  const ti = taps(ni, si);
  const tj = taps(nj, sj);
  const tk = taps(nk, sk);
  const out = new Uint8Array(ni * nj * nk);
  const corner = new Int32Array(8);
  const weight = new Float64Array(8);
  let o = 0;
  for (let i = 0; i < ni; i++) {
    const wi = ti.w[i];
    for (let j = 0; j < nj; j++) {
      const wj = tj.w[j];
      for (let k = 0; k < nk; k++, o++) {
        const wk = tk.w[k];
        for (let n = 0; n < 8; n++) {
          const ii = n & 4 ? ti.hi[i] : ti.lo[i];
          const jj = n & 2 ? tj.hi[j] : tj.lo[j];
          const kk = n & 1 ? tk.hi[k] : tk.lo[k];
          corner[n] = ((ii * sj + jj) * sk + kk) * numClasses;
          weight[n] = (n & 4 ? wi : 1 - wi) * (n & 2 ? wj : 1 - wj) * (n & 1 ? wk : 1 - wk);
        }
        let best = 0;
        let bestValue = -Infinity;
        for (let cls = 0; cls < numClasses; cls++) {
          let v = 0;
          for (let n = 0; n < 8; n++) v += weight[n] * probs[corner[n] + cls];
          if (v > bestValue) {
            bestValue = v;
            best = cls;
          }
        }
        out[o] = best;
      }
    }
  }
  return { shape: [ni, nj, nk], data: out };
}

function pooledShape(shape: readonly number[], factor: number): [number, number, number] {
  if (!Number.isInteger(factor) || factor < 1 || shape.some((n) => n % factor !== 0)) {
    throw new FedSegError(`downsampling factor ${factor} must be a positive integer dividing the shape ${shape.join('x')}`, { field: 'factor' });
  }
  return [shape[0] / factor, shape[1] / factor, shape[2] / factor];
}

/** Voxel size x factor; voxel 0 of the result is the centre of the first factor^3 block. */
function scaleAffine(affine: readonly (readonly number[])[], factor: number): number[][] {
  const shift = (factor - 1) / 2;
  return affine.map((row, r) => (r === 3 ? [...row] : [
    row[0] * factor, row[1] * factor, row[2] * factor, row[3] + shift * (row[0] + row[1] + row[2]),
  ]));
}
