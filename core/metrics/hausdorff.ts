/** 95th-percentile symmetric Hausdorff distance between two mask surfaces, in mm. */
import { squaredDistanceTransform } from './edt.js';
import { percentile } from './percentile.js';
import { surfaceOf } from './surface.js';
import type { Dims3, Spacing3 } from './types.js';

/** HD95 when exactly one mask is empty: the diagonal of the 240 x 240 x 155 BraTS grid in mm (SPEC section 4). */
export const HD95_ONE_EMPTY = 373.13;

/** Inclusive voxel box [i0, j0, k0] .. [i1, j1, k1]. */
export interface VoxelBox { lo: [number, number, number]; hi: [number, number, number] }

/**
 * HD95 between the masks `bits & bit` of two region-bit volumes. `box` must contain every voxel of
 * both masks; distances are computed in that box grown by one voxel, which is exact because every
 * surface voxel (the only distance sources and targets) lies inside it.
 */
export function hausdorff95(
  predBits: Uint8Array, truthBits: Uint8Array, bit: number, dims: Dims3, spacing: Spacing3, box: VoxelBox | null,
  predCount: number, truthCount: number,
): number {
  if (predCount === 0 && truthCount === 0) return 0;
  if (predCount === 0 || truthCount === 0 || box === null) return HD95_ONE_EMPTY;
  const lo = box.lo.map((v) => Math.max(0, v - 1));
  const hi = box.hi.map((v, axis) => Math.min(dims[axis] - 1, v + 1));
  const cropDims: Dims3 = [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1];
  const pred = cropMask(predBits, bit, dims, lo, cropDims);
  const truth = cropMask(truthBits, bit, dims, lo, cropDims);
  const predSurface = surfaceOf(pred, cropDims);
  const truthSurface = surfaceOf(truth, cropDims);
  const predToTruth = distancesAt(predSurface, squaredDistanceTransform(truthSurface, cropDims, spacing));
  const truthToPred = distancesAt(truthSurface, squaredDistanceTransform(predSurface, cropDims, spacing));
  return Math.max(percentile(predToTruth, 95), percentile(truthToPred, 95));
}

function cropMask(bits: Uint8Array, bit: number, dims: Dims3, lo: number[], cropDims: Dims3): Uint8Array {
  const [nx, ny] = dims;
  const [cx, cy, cz] = cropDims;
  const mask = new Uint8Array(cx * cy * cz);
  let out = 0;
  for (let k = 0; k < cz; k++) {
    for (let j = 0; j < cy; j++) {
      const row = lo[0] + nx * (lo[1] + j + ny * (lo[2] + k));
      for (let i = 0; i < cx; i++) mask[out++] = (bits[row + i] & bit) !== 0 ? 1 : 0;
    }
  }
  return mask;
}

/** Euclidean distances (mm) read from a squared-distance map at the voxels set in `where`. */
function distancesAt(where: Uint8Array, squared: Float64Array): Float64Array {
  let n = 0;
  for (let i = 0; i < where.length; i++) n += where[i];
  const out = new Float64Array(n);
  for (let i = 0, o = 0; i < where.length; i++) if (where[i] !== 0) out[o++] = Math.sqrt(squared[i]);
  return out;
}
