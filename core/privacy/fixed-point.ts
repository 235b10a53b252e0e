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
 */
import { FedSegError } from '../errors.js';

export const RING_BITS = 32;
const HALF_RING = 2 ** (RING_BITS - 1);
/** Fewer fractional bits than this would round away what a training round changes. */
const MIN_FRACTION_BITS = 8;

export interface FixedPointEncoding {
  /** Clipping range B: each coordinate of an update (w_local - w_global) is clamped to [-B, B]. */
  clipRange: number;
  /** Upper bound W on the round's total training cases (the participants' declared counts). */
  maxTotalCases: number;
  fractionBits: number;
}

/** The encoding for a round: the most precision for which W sites' worth of clipped updates cannot wrap. */
export function deriveEncoding(clipRange: number, maxTotalCases: number): FixedPointEncoding {
  if (!(clipRange > 0) || !Number.isFinite(clipRange)) throw new FedSegError(`clipRange must be a positive number, got ${clipRange}`, { field: 'secureAggregation.clipRange' });
  if (!Number.isSafeInteger(maxTotalCases) || maxTotalCases < 1) throw new FedSegError(`the round's total case count must be a positive integer, got ${maxTotalCases}`, { field: 'cases' });
  const fractionBits = Math.floor(Math.log2((HALF_RING - 1 - maxTotalCases) / (maxTotalCases * clipRange)));
  if (!(fractionBits >= MIN_FRACTION_BITS)) {
    throw new FedSegError(`a ${RING_BITS}-bit ring leaves ${fractionBits} fractional bits for ${maxTotalCases} cases at clipRange ${clipRange}; at least ${MIN_FRACTION_BITS} are needed (lower clipRange)`, { field: 'secureAggregation.clipRange' });
  }
  return { clipRange, maxTotalCases, fractionBits };
}

/** The most any coordinate of the decoded mean update can differ from the exact mean of the clamped updates. */
export function errorBound(encoding: FixedPointEncoding): number {
  return 2 ** -(encoding.fractionBits + 1);
}

/** Checks that an encoding received from the server is one deriveEncoding would produce. */
export function checkEncoding(encoding: FixedPointEncoding): void {
  const expected = deriveEncoding(encoding.clipRange, encoding.maxTotalCases);
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
 * Decodes an unmasked sum of `sites` contributions: the case-weighted mean update and the total
 * case count N. Refuses a sum whose N is impossible (a mask that did not cancel, or a site that
 * encoded more cases than declared), since its update part would be noise.
 */
export function decodeSum(sum: Uint32Array, sites: number, encoding: FixedPointEncoding): { mean: Float64Array; totalCases: number } {
  const length = sum.length - 1;
  const totalCases = sum[length];
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
