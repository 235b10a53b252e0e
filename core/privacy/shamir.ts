/**
 * Shamir secret sharing (Shamir 1979) of 32-byte secrets over the prime field GF(2^521 - 1), large
 * enough that every secret is one field element. Any `threshold` shares give the secret back; fewer
 * give no information about it. Shares travel as fixed-width hex so their length says nothing.
 */
import { randomBytes } from 'node:crypto';
import { FedSegError } from '../errors.js';

/** The Mersenne prime 2^521 - 1. */
const P = (1n << 521n) - 1n;
const SHARE_BYTES = 66;
export const SHARE_HEX_LENGTH = 2 * SHARE_BYTES;
export const SECRET_BYTES = 32;

/** One share: the polynomial's value at x (1-based, the holder's position in the round's roster). */
export interface Share {
  x: number;
  y: string;
}

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function randomFieldElement(): bigint {
  for (;;) {
    const bytes = randomBytes(SHARE_BYTES);
    bytes[0] &= 0x01; // 521 bits = 1 + 65 * 8
    const value = BigInt(`0x${bytes.toString('hex')}`);
    if (value < P) return value;
  }
}

function inverse(a: bigint): bigint {
  // Extended Euclid: much faster than a^(P-2) for a 521-bit prime.
  let [r0, r1] = [mod(a), P];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new FedSegError('Shamir: no inverse (repeated share index)');
  return mod(s0);
}

function checkXs(xs: readonly number[]): void {
  if (new Set(xs).size !== xs.length || xs.some((x) => !Number.isSafeInteger(x) || x < 1)) {
    throw new FedSegError(`Shamir share indices must be distinct positive integers, got ${xs.join(',')}`, { field: 'x' });
  }
}

/** Splits `secret` (32 bytes) into one share per x in `xs`; any `threshold` of them recover it. */
export function splitSecret(secret: Uint8Array, xs: readonly number[], threshold: number): Share[] {
  if (secret.length !== SECRET_BYTES) throw new FedSegError(`Shamir secrets are ${SECRET_BYTES} bytes, got ${secret.length}`);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > xs.length) {
    throw new FedSegError(`Shamir threshold ${threshold} must be between 1 and the ${xs.length} shares`, { field: 'threshold' });
  }
  checkXs(xs);
  const coefficients = [BigInt(`0x${Buffer.from(secret).toString('hex')}`)];
  for (let i = 1; i < threshold; i++) coefficients.push(randomFieldElement());
  return xs.map((x) => {
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coefficients.length - 1; i >= 0; i--) y = mod(y * bx + coefficients[i]);
    return { x, y: y.toString(16).padStart(SHARE_HEX_LENGTH, '0') };
  });
}

/**
 * Lagrange coefficients at 0 for the share indices `xs`: a secret is the sum of coefficient x y over
 * the same indices, so recovering many secrets from one set of holders computes these once.
 */
export function lagrangeAtZero(xs: readonly number[]): bigint[] {
  checkXs(xs);
  return xs.map((xj, j) => {
    let num = 1n;
    let den = 1n;
    xs.forEach((xm, m) => {
      if (m === j) return;
      num = mod(num * BigInt(xm));
      den = mod(den * BigInt(xm - xj));
    });
    return mod(num * inverse(den));
  });
}

/** Recovers a secret from shares at the indices `coefficients` were computed for (same order). */
export function combineShares(ys: readonly string[], coefficients: readonly bigint[]): Uint8Array {
  if (ys.length !== coefficients.length) throw new FedSegError(`Shamir: ${ys.length} shares for ${coefficients.length} coefficients`);
  let secret = 0n;
  ys.forEach((y, j) => {
    if (!/^[0-9a-f]+$/.test(y) || y.length !== SHARE_HEX_LENGTH) throw new FedSegError('Shamir share is not a field element', { field: 'share' });
    const value = BigInt(`0x${y}`);
    if (value >= P) throw new FedSegError('Shamir share is not a field element', { field: 'share' });
    secret = mod(secret + value * coefficients[j]);
  });
  if (secret >= 1n << 256n) throw new FedSegError('Shamir shares do not combine to a 32-byte secret (corrupt or mismatched shares)', { field: 'share' });
  return Buffer.from(secret.toString(16).padStart(2 * SECRET_BYTES, '0'), 'hex');
}
