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

export interface ClipPolicy {
  /** Bound = this times the round's lower-median update norm ... */
  medianMultiplier: number;
  /** ... but never more than this times the global model's norm. */
  maxRelativeNorm: number;
}

export const DEFAULT_CLIP_POLICY: ClipPolicy = { medianMultiplier: 3, maxRelativeNorm: 5 };

/**
 * What bounding needs to know of one accepted update: its norm ||w_k - w_global|| (computed when
 * the update was validated) and case counts, not its weights, so the plan is made once every norm
 * is in and each update is clipped as it is fed to the strategy.
 */
export interface UpdateToBound {
  site: string;
  norm: number;
  /** n_k as claimed. */
  numCases: number;
  /** Cases the operator registered for the site; null when none was registered. */
  registeredCases: number | null;
}

/** What bounding does to one site's update, for the audit log and the status page. */
export interface BoundReport {
  site: string;
  /** ||w_k - w_global|| as received. */
  norm: number;
  /** The norm the update is clipped to, or null when it is within the bound. */
  clippedTo: number | null;
  /** n_k as claimed, and the weight the strategy sees. */
  numCases: number;
  weight: number;
}

export interface BoundPlan {
  /** One report per update, in the order given. */
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

/** The round's clipping bound and each update's capped weight, from the norms alone; `globalNorm` is ||w_global||. */
export function planBounds(updates: readonly UpdateToBound[], globalNorm: number, policy: ClipPolicy = DEFAULT_CLIP_POLICY): BoundPlan {
  if (!(policy.medianMultiplier >= 1) || !(policy.maxRelativeNorm > 0)) {
    throw new FedSegError(`clipping needs medianMultiplier >= 1 and maxRelativeNorm > 0, got ${policy.medianMultiplier} and ${policy.maxRelativeNorm}`, { field: 'clipping' });
  }
  const bad = updates.find((u) => !Number.isFinite(u.norm));
  if (bad) throw new FedSegError(`update norm of site ${bad.site} is not finite`, { field: 'weights' });
  const bound = Math.min(policy.medianMultiplier * lowerMedian(updates.map((u) => u.norm)), policy.maxRelativeNorm * globalNorm);
  const medianCases = lowerMedian(updates.map((u) => u.numCases));
  const reports = updates.map((u): BoundReport => ({
    site: u.site, norm: u.norm, clippedTo: u.norm > bound ? bound : null, numCases: u.numCases, weight: Math.min(u.numCases, u.registeredCases ?? medianCases),
  }));
  return { reports, bound };
}

/**
 * Clips `values` (a stretch of one update's parameters, overwritten) to the round's bound when the
 * report says so: global + (values - global) * B / norm, in float64 per value. `global` is the same
 * stretch of the global model. Per value, so it applies equally to whole tensors and to blocks.
 */
export function clipInPlace(global: Float32Array, values: Float32Array, report: BoundReport): void {
  if (report.clippedTo === null) return;
  const factor = report.clippedTo / report.norm;
  for (let i = 0; i < values.length; i++) values[i] = global[i] + (values[i] - global[i]) * factor;
}
