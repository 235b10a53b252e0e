/**
 * Fixed-point encoding of a site's contribution into the ring Z_{2^32}, where masks are added.
 *
 * A site encodes its case-count-weighted update n_k * clamp(delta_k, -B, B) with `fractionBits` f
 * fractional bits (round to nearest), and appends n_k itself as the last element, so the unmasked
 * sum yields both sum_k n_k delta_k and N = sum_k n_k without the server seeing any one n_k.
 *
 * Range: |sum_k n_k x_k 2^f| <= W B 2^f + K/2 for K sites with at most W cases in all, so choosing
 * the largest f with W B 2^f + W < 2^31 keeps the signed sum from wrapping (K <= W).
 * Precision: each site's rounding moves its encoded value by at most 1/2, so every coordinate of
 * the decoded mean sum_k n_k x_k / N is off by at most K 2^-(f+1) / N <= 2^-(f+1) (errorBound).
 * Values beyond +-B are clamped first: B is the clipping range and must cover honest updates.
 *
 * Distributed DP (`dp` set, docs/PRIVACY.md): every site weighs 1 (W = the roster's size), clips its
 * update to L2 norm C in float64 and rounds it to the grid, then adds its Gaussian share of the noise
 * (std `noiseStd`), rounded to the grid too. The range then also covers OVERFLOW_SIGMAS standard
 * deviations of the summed noise: (W B' + OVERFLOW_SIGMAS noiseStd sqrt(W)) 2^f + W < 2^31 with
 * B' = min(B, C), so a coordinate of the sum wraps with probability below 2 Phi(-10) = 1.5e-23.
 */
import { FedSegError } from '../errors.js';
import type { GaussianStream } from './gaussian-noise.js';

export const RING_BITS = 32;
const HALF_RING = 2 ** (RING_BITS - 1);
/** Fewer fractional bits than this would round away what a training round changes. */
const MIN_FRACTION_BITS = 8;
/** Standard deviations of the summed DP noise the range covers: P(|Z| > 10) = 1.5e-23 per coordinate. */
export const OVERFLOW_SIGMAS = 10;

/** Distributed DP in a secure round: each site clips to L2 norm `clip` and adds N(0, noiseStd^2) per coordinate. */
export interface SiteNoise {
  clip: number;
  noiseStd: number;
}

export interface FixedPointEncoding {
  /** Clipping range B: each coordinate of an update (w_local - w_global) is clamped to [-B, B]. */
  clipRange: number;
  /** Upper bound W on the round's total training cases (the participants' declared counts), or on the sites under `dp`. */
  maxTotalCases: number;
  fractionBits: number;
  /** Distributed DP: every site weighs 1, clips and adds its noise (encodeNoisedUpdate). */
  dp?: SiteNoise;
}

/** The encoding for a round: the most precision for which W sites' worth of clipped updates (and their noise) cannot wrap. */
export function deriveEncoding(clipRange: number, maxTotalCases: number, dp?: SiteNoise): FixedPointEncoding {
  if (!(clipRange > 0) || !Number.isFinite(clipRange)) throw new FedSegError(`clipRange must be a positive number, got ${clipRange}`, { field: 'secureAggregation.clipRange' });
  if (!Number.isSafeInteger(maxTotalCases) || maxTotalCases < 1) throw new FedSegError(`the round's total case count must be a positive integer, got ${maxTotalCases}`, { field: 'cases' });
  if (dp && !(dp.clip > 0 && Number.isFinite(dp.clip) && dp.noiseStd >= 0 && Number.isFinite(dp.noiseStd))) {
    throw new FedSegError(`the DP clip must be positive and the noise std finite, got clip ${dp.clip}, std ${dp.noiseStd}`, { field: 'privacy' });
  }
  const bound = dp ? Math.min(clipRange, dp.clip) : clipRange;
  const range = maxTotalCases * bound + (dp ? OVERFLOW_SIGMAS * dp.noiseStd * Math.sqrt(maxTotalCases) : 0);
  const fractionBits = Math.floor(Math.log2((HALF_RING - 1 - maxTotalCases) / range));
  if (!(fractionBits >= MIN_FRACTION_BITS)) {
    throw new FedSegError(`a ${RING_BITS}-bit ring leaves ${fractionBits} fractional bits for ${maxTotalCases} ${dp ? 'sites' : 'cases'} at clipRange ${clipRange}${dp ? ` and noise std ${dp.noiseStd}` : ''}; at least ${MIN_FRACTION_BITS} are needed (lower clipRange)`, { field: 'secureAggregation.clipRange' });
  }
  return dp ? { clipRange, maxTotalCases, fractionBits, dp } : { clipRange, maxTotalCases, fractionBits };
}

/** The most any coordinate of the decoded mean update can differ from the exact mean of the clamped updates. */
export function errorBound(encoding: FixedPointEncoding): number {
  return 2 ** -(encoding.fractionBits + 1);
}

/** Checks that an encoding received from the server is one deriveEncoding would produce. */
export function checkEncoding(encoding: FixedPointEncoding): void {
  const expected = deriveEncoding(encoding.clipRange, encoding.maxTotalCases, encoding.dp);
  if (expected.fractionBits !== encoding.fractionBits) {
    throw new FedSegError(`fractionBits ${encoding.fractionBits} does not match clipRange ${encoding.clipRange} and ${encoding.maxTotalCases} cases (expected ${expected.fractionBits})`, { field: 'encoding.fractionBits' });
  }
}

/**
 * Encodes (n * clamp(local - global), n) into a vector of `local.length + 1` ring elements. `local`
 * and `global` are the flattened weights; returns the ring vector and how many coordinates were clamped.
 */
export function encodeUpdate(local: ArrayLike<number>, global: ArrayLike<number>, numCases: number, encoding: FixedPointEncoding): { vector: Uint32Array; clamped: number } {
  if (local.length !== global.length) throw new FedSegError(`update has ${local.length} values, the global model ${global.length}`, { field: 'weights' });
  if (encoding.dp) throw new FedSegError('a distributed-DP round encodes clipped, noised updates of weight 1 (encodeNoisedUpdate), not case-weighted ones', { field: 'encoding.dp' });
  if (!Number.isSafeInteger(numCases) || numCases < 1 || numCases > encoding.maxTotalCases) {
    throw new FedSegError(`case count ${numCases} must be an integer in [1, ${encoding.maxTotalCases}]`, { field: 'numCases' });
  }
  const { clipRange } = encoding;
  const scale = numCases * 2 ** encoding.fractionBits;
  const vector = new Uint32Array(local.length + 1);
  let clamped = 0;
  for (let i = 0; i < local.length; i++) {
    let d = local[i] - global[i];
    if (!Number.isFinite(d)) throw new FedSegError(`update value ${i} is not finite`, { field: 'weights' });
    if (d > clipRange) { d = clipRange; clamped++; } else if (d < -clipRange) { d = -clipRange; clamped++; }
    vector[i] = Math.round(d * scale);
  }
  vector[local.length] = numCases;
  return { vector, clamped };
}

/**
 * Distributed DP: encodes (clip_C'(local - global) on the grid + rounded N(0, noiseStd^2), 1) with
 * weight 1. The update is clipped in float64 to C' = C - sqrt(P) 2^-(f+1), so that after rounding
 * to the grid (at most 2^-(f+1) per coordinate) its L2 norm is still at most C: the sensitivity
 * the accountant assumes holds for the encoded values themselves. The noise is drawn after the
 * update is on the grid and rounded on its own, so the rounding of the noise never depends on the
 * data. Returns the ring vector and the update's norm before clipping.
 */
export function encodeNoisedUpdate(local: ArrayLike<number>, global: ArrayLike<number>, encoding: FixedPointEncoding, noise: GaussianStream): { vector: Uint32Array; norm: number } {
  const dp = encoding.dp ?? fail('encodeNoisedUpdate needs a distributed-DP encoding', 'encoding.dp');
  const length = local.length;
  if (length !== global.length) fail(`update has ${length} values, the global model ${global.length}`, 'weights');
  const unit = 2 ** encoding.fractionBits;
  const clip = dp.clip - Math.sqrt(length) / (2 * unit);
  if (!(clip >= dp.clip / 2)) fail(`${encoding.fractionBits} fractional bits are too coarse for clip ${dp.clip} over ${length} values (grid rounding alone could reach the clip; lower clipRange)`, 'encoding.fractionBits');
  const delta = new Float64Array(length);
  let squared = 0;
  for (let i = 0; i < length; i++) {
    delta[i] = local[i] - global[i];
    if (!Number.isFinite(delta[i])) fail(`update value ${i} is not finite`, 'weights');
    squared += delta[i] * delta[i];
  }
  const norm = Math.sqrt(squared);
  const factor = norm > clip ? clip / norm : 1;
  const bound = Math.min(encoding.clipRange, dp.clip);
  const noiseValues = new Float64Array(length);
  noise.addTo(noiseValues, dp.noiseStd);
  const vector = new Uint32Array(length + 1);
  for (let i = 0; i < length; i++) {
    // Clamping never raises the L2 norm; with B >= C it never bites.
    const x = Math.max(-bound, Math.min(bound, delta[i] * factor));
    vector[i] = Math.round(x * unit) + Math.round(noiseValues[i] * unit);
  }
  vector[length] = 1;
  return { vector, norm };
}

function fail(message: string, field: string): never {
  throw new FedSegError(message, { field });
}

/**
 * Decodes an unmasked sum of `sites` contributions: the case-weighted mean update and the total
 * case count N. Refuses a sum whose N is impossible (a mask that did not cancel, or a site that
 * encoded more cases than declared), since its update part would be noise.
 */
export function decodeSum(sum: Uint32Array, sites: number, encoding: FixedPointEncoding): { mean: Float64Array; totalCases: number } {
  const length = sum.length - 1;
  const totalCases = sum[length];
  if (encoding.dp && totalCases !== sites) {
    throw new FedSegError(`the unmasked weight ${totalCases} is not the ${sites} survivors of a distributed-DP round (each weighs 1): masks did not cancel or a site encoded another weight`, { field: 'numCases' });
  }
  if (totalCases < sites || totalCases > encoding.maxTotalCases) {
    throw new FedSegError(`the unmasked case count ${totalCases} is outside [${sites}, ${encoding.maxTotalCases}]: masks did not cancel or a site encoded more cases than it declared`, { field: 'numCases' });
  }
  const inv = 1 / (totalCases * 2 ** encoding.fractionBits);
  const mean = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const s = sum[i];
    mean[i] = (s >= HALF_RING ? s - 2 * HALF_RING : s) * inv;
  }
  return { mean, totalCases };
}

/** A ring vector's wire bytes: uint32 little-endian (the byte order of every host FedSeg runs on). */
export function ringToBytes(vector: Uint32Array): Uint8Array {
  return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
}

/** The ring vector in wire bytes, read in place when aligned. */
export function ringFromBytes(bytes: Uint8Array): Uint32Array {
  if (bytes.byteLength % 4 !== 0) throw new FedSegError(`a ring vector is a whole number of 4-byte elements, got ${bytes.byteLength} bytes`, { field: 'payload' });
  return bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Uint32Array(bytes.slice().buffer);
}
