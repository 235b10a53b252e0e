import type { CropWindow } from './crop.js';
import type { CaseTensor, NumericArray } from './layout.js';
import { forEachTile } from './tiles.js';

/**
 * `volume`: min-max over the whole uncropped volume (SPEC default). `per-slice`: each axial
 * slice k scaled over its own 240 x 240 voxels, as the original scripts' MinMaxScaler did.
 */
export type ScalingMode = 'volume' | 'per-slice';

/** x -> (x - min[k]) * inverseRange[k] for every axial slice k; inverseRange 0 maps a constant slice to 0. */
export interface MinMaxScaling {
  min: Float64Array;
  inverseRange: Float64Array;
}

/** Min-max parameters of a volume in NIfTI order with dims (nx, ny, nz). Non-finite voxels are ignored. */
export function minMaxScaling(data: NumericArray, dims: readonly number[], mode: ScalingMode): MinMaxScaling {
  const [nx, ny, nz] = dims;
  const sliceSize = nx * ny;
  const min = new Float64Array(nz);
  const inverseRange = new Float64Array(nz);
  let volumeMin = Infinity;
  let volumeMax = -Infinity;
  for (let k = 0; k < nz; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    const end = (k + 1) * sliceSize;
    for (let n = k * sliceSize; n < end; n++) {
      const v = data[n];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    min[k] = lo;
    inverseRange[k] = hi > lo ? 1 / (hi - lo) : 0;
    if (lo < volumeMin) volumeMin = lo;
    if (hi > volumeMax) volumeMax = hi;
  }
  if (mode === 'volume') {
    min.fill(volumeMin);
    inverseRange.fill(volumeMax > volumeMin ? 1 / (volumeMax - volumeMin) : 0);
  }
  return { min, inverseRange };
}

/**
 * Writes the scaled crop of one modality into channel `channel` of `target` (shape = crop
 * shape x channels), tile by tile (source i fastest, target k fastest; see forEachTile).
 */
export function writeScaledCrop(
  target: CaseTensor,
  channel: number,
  source: NumericArray,
  dims: readonly number[],
  scaling: MinMaxScaling,
  crop: CropWindow,
): void {
  const [nx, ny] = dims;
  const [, nj, nk, nc] = target.shape;
  const iStride = nj * nk * nc;
  const out = target.data;
  const { min, inverseRange } = scaling;
  forEachTile(target.shape, (j, i0, i1, k0, k1) => {
    const sourceRow = crop.i[0] + nx * (j + crop.j[0]);
    for (let k = k0; k < k1; k++) {
      const sourceK = k + crop.k[0];
      const lo = min[sourceK];
      const scale = inverseRange[sourceK];
      const s = sourceRow + nx * ny * sourceK;
      const d = (j * nk + k) * nc + channel;
      for (let i = i0; i < i1; i++) {
        const v = (source[s + i] - lo) * scale;
        // Clamp guards float rounding; NaN voxels (never in valid MRI) become 0.
        out[d + i * iStride] = v > 0 ? (v < 1 ? v : 1) : 0;
      }
    }
  });
}
