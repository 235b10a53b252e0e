import { Mulberry32 } from '../random.js';

/**
 * Small seeded PRNG (mulberry32) so weight initialisation, dropout masks and patch sampling are
 * reproducible on every backend and in the server without TensorFlow.
 */
export class SeededRandom extends Mulberry32 {
  constructor(seed: number) {
    super(Math.trunc(seed) ^ 0x9e3779b9);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** A new 32-bit seed drawn from this stream, for child generators. */
  seed(): number {
    return Math.floor(this.next() * 4294967296);
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}
