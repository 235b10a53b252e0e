/** Scaled voxel values (scl_slope / scl_inter applied) and their summary statistics. */
import type { NiftiImage } from './read.js';

/** A new Float32Array of the voxel values with scl_slope / scl_inter applied. Never aliases `image.data`. */
export function toFloat32(image: Pick<NiftiImage, 'header' | 'data'>): Float32Array {
  const { data, header } = image;
  const out = new Float32Array(data.length);
  const slope = header.scaling?.slope ?? 1;
  const inter = header.scaling?.inter ?? 0;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]) * slope + inter;
  } else if (slope === 1 && inter === 0) {
    out.set(data);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = data[i] * slope + inter;
  }
  return out;
}

export interface ValueStats {
  min: number;
  max: number;
  mean: number;
  /** Voxels that are NaN or infinite (left out of min, max and mean). */
  nonFinite: number;
  count: number;
}

/** Min, max and mean of the scaled values, accumulated in float64 (as nibabel's get_fdata would give). */
export function valueStats(image: Pick<NiftiImage, 'header' | 'data'>): ValueStats {
  const { data, header } = image;
  const slope = header.scaling?.slope ?? 1;
  const inter = header.scaling?.inter ?? 0;
  const isBig = data instanceof BigInt64Array || data instanceof BigUint64Array;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let finite = 0;
  for (let i = 0; i < data.length; i++) {
    const value = (isBig ? Number(data[i]) : (data[i] as number)) * slope + inter;
    if (!Number.isFinite(value)) continue;
    if (value < min) min = value;
    if (value > max) max = value;
    sum += value;
    finite++;
  }
  return finite === 0
    ? { min: NaN, max: NaN, mean: NaN, nonFinite: data.length, count: data.length }
    : { min, max, mean: sum / finite, nonFinite: data.length - finite, count: data.length };
}
