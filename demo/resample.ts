/**
 * The demo's reduced input size: the 128^3 preprocessed crop is shrunk by an integer factor
 * (e.g. 4 -> 32^3 at 4 mm) so a whole crop fits one small-model forward pass on a CPU, and the
 * model's class probabilities are brought back to the crop with trilinear interpolation. Images are
 * shrunk with core/preprocess's averagePool; masks here, with ties broken toward tumour.
 * Layouts are preprocessing's row-major [i][j][k](c).
 */
import type { ClassVolume } from '../core/preprocess/layout.js';

/** Tie-break order when classes are equally frequent in a block: tumour classes first (ET, NCR, ED, background). */
const PRIORITY = [3, 1, 2, 0];

function reducedShape(shape: readonly number[], factor: number): [number, number, number] {
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`downsampling factor ${factor} must be a positive integer`);
  if (shape.slice(0, 3).some((n) => n % factor !== 0)) throw new RangeError(`shape ${shape.join('x')} is not divisible by ${factor}`);
  return [shape[0] / factor, shape[1] / factor, shape[2] / factor];
}

/** Most frequent class of each factor^3 block (ties: ET, NCR, ED, background). */
export function downsampleClasses(classes: ClassVolume, factor: number, numClasses = 4): ClassVolume {
  const [ni, nj, nk] = classes.shape;
  const [oi, oj, ok] = reducedShape(classes.shape, factor);
  const counts = new Uint16Array(oi * oj * ok * numClasses);
  let src = 0;
  for (let i = 0; i < ni; i++) {
    const bi = Math.floor(i / factor);
    for (let j = 0; j < nj; j++) {
      const row = (bi * oj + Math.floor(j / factor)) * ok;
      for (let k = 0; k < nk; k++) counts[(row + Math.floor(k / factor)) * numClasses + classes.data[src++]]++;
    }
  }
  const out = new Uint8Array(oi * oj * ok);
  const order = PRIORITY.filter((c) => c < numClasses);
  for (let v = 0; v < out.length; v++) {
    let best = order[0];
    for (const c of order) if (counts[v * numClasses + c] > counts[v * numClasses + best]) best = c;
    out[v] = best;
  }
  return { shape: [oi, oj, ok], data: out };
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
