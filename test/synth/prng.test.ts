import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../core/model/random.js';
import { Mulberry32 } from '../../core/random.js';
import { Prng } from '../../core/synth/prng.js';

function draws(rng: { next(): number }, n: number): number[] {
  return Array.from({ length: n }, () => rng.next() * 4294967296);
}

test('mulberry32 gives the reference stream (seed 1 starts 0.6270739405881613)', () => {
  assert.deepEqual(draws(new Mulberry32(1), 3), [2693262067, 11749833, 2265367787]);
});

test('synth Prng is mulberry32 seeded as is; model SeededRandom is mulberry32 seeded with seed ^ 0x9e3779b9', () => {
  for (const seed of [0, 7, 2 ** 32 - 1, -3]) {
    assert.deepEqual(draws(new Prng(seed), 50), draws(new Mulberry32(seed), 50));
    assert.deepEqual(draws(new SeededRandom(seed), 50), draws(new Mulberry32(seed ^ 0x9e3779b9), 50));
  }
});
