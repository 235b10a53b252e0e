import { Mulberry32 } from '../random.js';

/**
 * Seeded pseudo-random numbers for synthetic data. Everything synthetic FedSeg writes must be
 * byte-identical for the same seed on every machine, so Math.random is never used (mulberry32,
 * seeded with `seed` as is).
 */
export class Prng extends Mulberry32 {
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /**
   * Approximately standard normal: the sum of four uniforms (Irwin-Hall), rescaled to unit
   * variance. Much cheaper than Box-Muller and accurate enough for scanner noise.
   */
  gaussian(): number {
    return (this.next() + this.next() + this.next() + this.next() - 2) * 1.7320508075688772;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

/**
 * Mixes several integers into one 32-bit seed (splitmix32-style finaliser), so every
 * (seed, site, case) triple gets an independent stream and a case never depends on the
 * order in which cases are generated.
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}
