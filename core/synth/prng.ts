/**
 * Seeded pseudo-random numbers for synthetic data. Everything synthetic FedSeg writes must be
 * byte-identical for the same seed on every machine, so Math.random is never used: this is
 * mulberry32 (32-bit state, integer-only arithmetic, identical results in every JS engine).
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

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
