import assert from 'node:assert/strict';
import { test } from 'node:test';
import { squaredDistanceTransform, type Dims3, type Spacing3 } from '../../core/metrics/index.js';
import { seededRandom } from './helpers.js';

function bruteForce(features: Uint8Array, dims: Dims3, spacing: Spacing3): Float64Array {
  const [nx, ny] = dims;
  const coords = (index: number) => [index % nx, Math.floor(index / nx) % ny, Math.floor(index / (nx * ny))];
  const out = new Float64Array(features.length).fill(Infinity);
  for (let a = 0; a < features.length; a++) {
    const [ai, aj, ak] = coords(a);
    for (let b = 0; b < features.length; b++) {
      if (features[b] === 0) continue;
      const [bi, bj, bk] = coords(b);
      const d = ((ai - bi) * spacing[0]) ** 2 + ((aj - bj) * spacing[1]) ** 2 + ((ak - bk) * spacing[2]) ** 2;
      if (d < out[a]) out[a] = d;
    }
  }
  return out;
}

test('EDT equals brute force on random sparse and dense masks with anisotropic spacing', () => {
  const random = seededRandom(7);
  for (let trial = 0; trial < 30; trial++) {
    const dims: Dims3 = [1 + Math.floor(random() * 9), 1 + Math.floor(random() * 8), 1 + Math.floor(random() * 7)];
    const spacing: Spacing3 = [0.5 + random() * 3, 0.5 + random() * 3, 0.5 + random() * 3];
    const density = [0.01, 0.05, 0.3, 0.9][trial % 4];
    const features = Uint8Array.from({ length: dims[0] * dims[1] * dims[2] }, () => (random() < density ? 1 : 0));
    const fast = squaredDistanceTransform(features, dims, spacing);
    const slow = bruteForce(features, dims, spacing);
    for (let i = 0; i < fast.length; i++) {
      if (slow[i] === Infinity) assert.equal(fast[i], Infinity);
      else assert.ok(Math.abs(fast[i] - slow[i]) <= 1e-9 * Math.max(1, slow[i]), `trial ${trial} voxel ${i}: ${fast[i]} vs ${slow[i]}`);
    }
  }
});

test('EDT of a single feature voxel is the anisotropic Euclidean distance', () => {
  const dims: Dims3 = [4, 3, 2];
  const features = new Uint8Array(24);
  features[0] = 1;
  const d = squaredDistanceTransform(features, dims, [1, 2, 3]);
  assert.equal(d[0], 0);
  assert.equal(d[3 + 4 * (2 + 3 * 1)], 9 + 16 + 9); // voxel (3, 2, 1): (3*1)^2 + (2*2)^2 + (1*3)^2
});

test('EDT rejects a feature array that does not match dims', () => {
  assert.throws(() => squaredDistanceTransform(new Uint8Array(5), [2, 2, 2], [1, 1, 1]), RangeError);
});
