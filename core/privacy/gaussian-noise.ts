/**
 * Gaussian noise for DP-FedAvg from a cryptographic stream: AES-256-CTR keystream bytes -> 53-bit
 * uniforms -> Box-Muller. A known key reproduces the noise bit for bit (the demo, the experiment and
 * tests); anyone holding the key can also subtract it, so a real federation draws a fresh secret
 * key every round (noiseKey without a seed). Box-Muller in float64 is not a perfectly private
 * sampler (Mironov, CCS 2012, on floating-point noise), a limitation shared with Opacus and
 * TF-Privacy.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/** Normals drawn per keystream chunk (16 bytes per pair of normals). */
const CHUNK_PAIRS = 65_536;
const TWO_POW_53 = 2 ** 53;

/**
 * The key of one round's noise: derived from `seed` and the round when a seed is configured
 * (reproducible), else 32 fresh random bytes that are never stored.
 */
export function noiseKey(seed: number | undefined, round: number): Buffer {
  if (seed === undefined) return randomBytes(32);
  return createHash('sha256').update(`fedseg dp-fedavg noise v1\u0000${seed}\u0000${round}`).digest();
}

/**
 * The key of a site's share of the noise in a distributed-DP round. Without a seed it is 32 fresh
 * bytes from the site's OS, never stored or sent, so neither the server nor the other sites can
 * regenerate (and subtract) it. A seed (the demo and the experiment, which run every site and know
 * the seed anyway) makes it SHA-256 of (seed, round, attempt, site): reproducible, never for real data.
 */
export function siteNoiseKey(seed: number | undefined, round: number, attempt: number, site: string): Buffer {
  if (seed === undefined) return randomBytes(32);
  return createHash('sha256').update(`fedseg distributed-dp noise v1\u0000${seed}\u0000${round}\u0000${attempt}\u0000${site}`).digest();
}

/** A stream of standard normal draws keyed by a 32-byte key. */
export class GaussianStream {
  private readonly cipher;
  private buffer = new Float64Array(0);
  private used = 0;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new Error(`noise key must be 32 bytes, got ${key.length}`);
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  /** Draws N(0, std^2) and adds it to each value of `values` in place. */
  addTo(values: Float64Array, std: number): void {
    for (let i = 0; i < values.length; i++) {
      if (this.used === this.buffer.length) this.refill();
      values[i] += std * this.buffer[this.used++];
    }
  }

  private refill(): void {
    const bytes = this.cipher.update(Buffer.alloc(16 * CHUNK_PAIRS));
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const normals = new Float64Array(2 * CHUNK_PAIRS);
    for (let p = 0; p < CHUNK_PAIRS; p++) {
      // Two 53-bit uniforms; u1 in (0, 1] keeps log(u1) finite.
      const u1 = ((words[4 * p] >>> 5) * 67_108_864 + (words[4 * p + 1] >>> 6) + 1) / TWO_POW_53;
      const u2 = ((words[4 * p + 2] >>> 5) * 67_108_864 + (words[4 * p + 3] >>> 6)) / TWO_POW_53;
      const radius = Math.sqrt(-2 * Math.log(u1));
      normals[2 * p] = radius * Math.cos(2 * Math.PI * u2);
      normals[2 * p + 1] = radius * Math.sin(2 * Math.PI * u2);
    }
    this.buffer = normals;
    this.used = 0;
  }
}
