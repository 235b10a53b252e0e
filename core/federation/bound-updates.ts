/**
 * Byzantine bounds applied to a round's accepted updates before any strategy sees them (SPEC
 * section 5): each update's aggregation weight is capped, and its distance from the global model
 * is norm-clipped.
 *
 * Weight cap. A site's case count n_k is already checked against the count the operator registered
 * for it (`fedseg server add-site NAME --cases N`). A site with no registered count (added before
 * counts existed, or without --cases) weighs at most the round's lower-median case count, so one
 * such site claiming 10^12 cases counts like a typical site, not like all of them.
 *
 * Norm clip. Let d_k = ||w_k - w_global||. The round's bound is
 *     B = min(medianMultiplier * lowerMedian_k(d_k), maxRelativeNorm * ||w_global||)
 * and an update with d_k > B becomes w_global + (w_k - w_global) * B / d_k. The median adapts to
 * how far honest training moves the model this round (learning rate, epochs, data) with no tuning;
 * the lower median of k updates is an honest site's norm, or lies between two honest ones, as long
 * as fewer than half of the updates are hostile. The ceiling (relative to the global model's own
 * norm, so it holds for any architecture) bounds the rounds where the median cannot help: a single
 * site, or two. Defaults 3 and 5: honest updates of the bundled U-Nets move the model by 0.1-2x of
 * its norm per round and differ between sites by well under 3x, so they are not clipped.
 *
 * Guarantee. With FedAvg/FedProx, the global model after the round differs from the one computed
 * with a hostile site's update replaced by the global model itself by at most s * B, where
 * s = (capped weight of that site) / (sum of capped weights). One hostile site of five with a
 * registered count equal to the others' moves the global model by at most B / 5, and B is at most
 * 3x an honest site's update norm. FedAdam/FedYogi see the same bounded pseudo-gradient; median
 * and trimmed mean are bounded coordinate-wise on top.
 */
import { FedSegError } from '../errors.js';
import type { ClientUpdate } from './strategies/types.js';
import { l2Distance, type TensorList, withData } from './tensors.js';

export interface ClipPolicy {
  /** Bound = this times the round's lower-median update norm ... */
  medianMultiplier: number;
  /** ... but never more than this times the global model's norm. */
  maxRelativeNorm: number;
}

export const DEFAULT_CLIP_POLICY: ClipPolicy = { medianMultiplier: 3, maxRelativeNorm: 5 };

export interface UpdateToBound extends ClientUpdate {
  /** Cases the operator registered for the site; null when none was registered. */
  registeredCases: number | null;
}

/** What bounding did to one site's update, for the audit log and the status page. */
export interface BoundReport {
  site: string;
  /** ||w_k - w_global|| as received. */
  norm: number;
  /** The norm the update was clipped to, or null when it was within the bound. */
  clippedTo: number | null;
  /** n_k as claimed, and the weight the strategy sees. */
  numCases: number;
  weight: number;
}

export interface BoundedRound {
  updates: ClientUpdate[];
  reports: BoundReport[];
  /** The clipping bound B of this round. */
  bound: number;
}

/** Element floor((k-1)/2) of the sorted values: the median for odd k, the lower of the two middle values for even k. */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) throw new FedSegError('the median of no values is undefined');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1];
}

export function boundUpdates(updates: readonly UpdateToBound[], global: TensorList, policy: ClipPolicy = DEFAULT_CLIP_POLICY): BoundedRound {
  if (!(policy.medianMultiplier >= 1) || !(policy.maxRelativeNorm > 0)) {
    throw new FedSegError(`clipping needs medianMultiplier >= 1 and maxRelativeNorm > 0, got ${policy.medianMultiplier} and ${policy.maxRelativeNorm}`, { field: 'clipping' });
  }
  const norms = updates.map((u) => l2Distance(u.weights, global));
  const bad = norms.findIndex((n) => !Number.isFinite(n));
  if (bad >= 0) throw new FedSegError(`update norm of site ${updates[bad].site} is not finite`, { field: 'weights' });
  const bound = Math.min(policy.medianMultiplier * lowerMedian(norms), policy.maxRelativeNorm * l2Distance(global));
  const medianCases = lowerMedian(updates.map((u) => u.numCases));
  const reports: BoundReport[] = [];
  const bounded = updates.map((u, i) => {
    const cap = u.registeredCases ?? medianCases;
    const weight = Math.min(u.numCases, cap);
    const clip = norms[i] > bound;
    reports.push({ site: u.site, norm: norms[i], clippedTo: clip ? bound : null, numCases: u.numCases, weight });
    return { site: u.site, numCases: weight, weights: clip ? scaleTowards(global, u.weights, bound / norms[i]) : u.weights };
  });
  return { updates: bounded, reports, bound };
}

/** global + (weights - global) * factor, computed in float64 per value. */
function scaleTowards(global: TensorList, weights: TensorList, factor: number): TensorList {
  return withData(global, global.map((g, k) => {
    const x = weights[k].data;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = g.data[i] + (x[i] - g.data[i]) * factor;
    return out;
  }));
}
