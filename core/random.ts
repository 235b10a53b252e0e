/**
 * mulberry32: the one seeded PRNG behind synthetic data (core/synth/prng.ts) and model
 * initialisation, dropout and patch sampling (core/model/random.ts). 32-bit state and integer-only
 * arithmetic give identical streams in every JS engine and backend, which Math.random cannot.
 * Each user subclasses it with its own seeding and helpers, so neither depends on the other.
 */
export class Mulberry32 {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
