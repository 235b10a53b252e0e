/**
 * Client-level clipping of DP-FedAvg (McMahan et al., ICLR 2018): a site's update is the change
 * w_local - w_global, scaled down to L2 norm at most C, so one site's influence on the sum of
 * updates (the sensitivity the noise is calibrated to) is at most C. Sites clip before anything
 * leaves them, before secure-aggregation masking too.
 */
import { FedSegError } from '../errors.js';
import { l2Distance, withData, type TensorList } from '../federation/tensors.js';

export interface ClippedUpdate {
  /** w_global + (w_local - w_global) * factor, in float32. */
  weights: TensorList;
  /** ||w_local - w_global|| before clipping. */
  norm: number;
  /** min(1, C / norm): 1 when the update was within the clip. */
  factor: number;
}

/** min(1, clip / norm): the factor that brings an update of L2 norm `norm` within `clip`. */
export function clipFactor(norm: number, clip: number): number {
  if (!(clip > 0) || !Number.isFinite(clip)) throw new FedSegError(`the DP clip norm must be positive, got ${clip}`, { field: 'privacy.clip' });
  if (!Number.isFinite(norm)) throw new FedSegError(`update norm is not finite (${norm})`, { field: 'weights' });
  return norm > clip ? clip / norm : 1;
}

/**
 * Clips the site's update to L2 norm `clip`. The result is rounded to float32 weights, so
 * w_clipped - w_global can exceed C by float32 rounding of the weights (about 6e-8 x |w| per
 * value); whoever sums the updates re-clips the differences in float64 (dp-aggregation.ts), which
 * is what the privacy guarantee rests on.
 */
export function clipUpdate(global: TensorList, local: TensorList, clip: number): ClippedUpdate {
  const norm = l2Distance(local, global);
  const factor = clipFactor(norm, clip);
  if (factor === 1) return { weights: local, norm, factor };
  const weights = withData(local, local.map((t, k) => {
    const g = global[k].data;
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) out[i] = g[i] + (t.data[i] - g[i]) * factor;
    return out;
  }));
  return { weights, norm, factor };
}
