import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { attentionCoefficients, attentionGate, convSame, convSameRelu, pointwise, strided2Conv, transposeUp } from '../../core/model/layers.js';
import { SeededRandom } from '../../core/model/random.js';
import { initBackend, tf } from '../../core/tf/backend.js';

before(async () => {
  await initBackend('cpu');
});

function seeded(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new SeededRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.uniform(-scale, scale)), shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/**
 * Checks d(sum(f(inputs) * r))/d(input) from tf.grads against central finite differences on a few
 * coordinates of every input. float32 with h = 1e-2 on smooth objectives gives ~1e-3 relative error.
 */
function checkGradients(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], seed: number) {
  const r = tf.tidy(() => seeded(f(...inputs).shape, seed));
  const objective = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)) as tf.Scalar;
  const analytic = tf.grads(objective)(inputs);
  const rng = new SeededRandom(seed + 1);
  const h = 1e-2;
  inputs.forEach((input, which) => {
    const base = input.dataSync();
    const grad = analytic[which].dataSync();
    for (let k = 0; k < 6; k++) {
      const i = rng.int(base.length);
      const probe = (delta: number) =>
        tf.tidy(() => {
          const moved = Float32Array.from(base);
          moved[i] += delta;
          const xs = inputs.map((t, j) => (j === which ? tf.tensor(moved, t.shape) : t));
          return objective(...xs).dataSync()[0];
        });
      const numeric = (probe(h) - probe(-h)) / (2 * h);
      const tolerance = 2e-2 * Math.max(1, Math.abs(numeric));
      assert.ok(Math.abs(numeric - grad[i]) <= tolerance, `input ${which} index ${i}: analytic ${grad[i]} vs numeric ${numeric}`);
    }
  });
}

test('transposeUp equals Conv3DTranspose(kernel 2, stride 2) with bias', () => {
  tf.tidy(() => {
    const x = seeded([2, 3, 2, 4, 5], 1);
    const kernel = seeded([5, 2, 2, 2, 3], 2); // [cin, kd, kh, kw, cout]
    const bias = seeded([3], 3);
    const ours = transposeUp(x as tf.Tensor5D, kernel, bias);
    const filter = tf.transpose(kernel, [1, 2, 3, 4, 0]) as tf.Tensor5D; // tf: [kd, kh, kw, out, in]
    const reference = tf.add(tf.conv3dTranspose(x as tf.Tensor5D, filter, [2, 6, 4, 8, 3], 2, 'same'), bias);
    assert.deepEqual(ours.shape, [2, 6, 4, 8, 3]);
    assert.ok(maxAbsDiff(ours, reference) < 1e-5);
  });
});

test('strided2Conv equals conv3d(kernel 2, stride 2, valid) and pointwise equals a 1x1x1 conv3d', () => {
  tf.tidy(() => {
    const x = seeded([1, 4, 6, 2, 3], 4);
    const kernel = seeded([2, 2, 2, 3, 5], 5);
    assert.ok(maxAbsDiff(strided2Conv(x as tf.Tensor5D, kernel), tf.conv3d(x as tf.Tensor5D, kernel as tf.Tensor5D, 2, 'valid')) < 1e-5);
    const k1 = seeded([1, 1, 1, 3, 4], 6);
    const b1 = seeded([4], 7);
    const reference = tf.add(tf.conv3d(x as tf.Tensor5D, k1 as tf.Tensor5D, 1, 'same'), b1);
    assert.ok(maxAbsDiff(pointwise(x as tf.Tensor5D, k1, b1), reference) < 1e-5);
  });
});

test('convSameRelu with a skip equals relu of a convolution of the concatenation, in value and in every gradient', () => {
  const a = seeded([1, 4, 4, 2, 3], 50);
  const b = seeded([1, 4, 4, 2, 2], 51);
  const kernel = seeded([3, 3, 3, 5, 4], 52);
  const bias = seeded([4], 53);
  const split = (x: tf.Tensor, y: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => convSameRelu(x as tf.Tensor5D, k, c, { skip: y as tf.Tensor5D });
  const joined = (x: tf.Tensor, y: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => tf.relu(convSame(tf.concat([x, y], 4) as tf.Tensor5D, k, c));
  assert.ok(maxAbsDiff(split(a, b, kernel, bias), joined(a, b, kernel, bias)) < 1e-5);
  const r = seeded([1, 4, 4, 2, 4], 54);
  const gradsOf = (f: typeof split) => tf.grads((x, y, k, c) => tf.sum(tf.mul(f(x, y, k, c), r)))([a, b, kernel, bias]);
  const expected = gradsOf(joined);
  gradsOf(split).forEach((g, i) => assert.ok(maxAbsDiff(g, expected[i]) < 1e-4, `gradient ${i}`));
});

test('transposeUp gradients match finite differences (input, kernel, bias)', () => {
  const x = seeded([1, 2, 2, 2, 3], 10);
  const kernel = seeded([3, 2, 2, 2, 2], 11);
  const bias = seeded([2], 12);
  checkGradients((a, k, b) => transposeUp(a as tf.Tensor5D, k, b), [x, kernel, bias], 13);
});

test('strided2Conv gradients match finite differences', () => {
  checkGradients((a, k) => strided2Conv(a as tf.Tensor5D, k), [seeded([1, 4, 2, 4, 2], 20), seeded([2, 2, 2, 2, 3], 21)], 22);
});

test('attention gate gradients (through sigmoid, x2 upsampling and channel broadcast) match finite differences', () => {
  const x = seeded([1, 4, 4, 4, 2], 30);
  const g = seeded([1, 2, 2, 2, 3], 31);
  const theta = seeded([2, 2, 2, 2, 2], 32, 0.5);
  const phi = seeded([1, 1, 1, 3, 2], 33, 0.5);
  const phiBias = seeded([2], 34, 0.1);
  const psi = seeded([1, 1, 1, 2, 1], 35, 0.5);
  const psiBias = seeded([1], 36, 0.1);
  checkGradients(
    (a, b, t, p, pb, s, sb) => attentionGate(a as tf.Tensor5D, b as tf.Tensor5D, { theta: t, phi: p, phiBias: pb, psi: s, psiBias: sb }),
    [x, g, theta, phi, phiBias, psi, psiBias],
    37,
  );
});

test('attention coefficients lie in (0, 1), are constant over each 2x2x2 block, and scale every channel alike', () => {
  tf.tidy(() => {
    const x = seeded([1, 4, 4, 4, 3], 40);
    const g = seeded([1, 2, 2, 2, 2], 41);
    const params = {
      theta: seeded([2, 2, 2, 3, 1], 42), phi: seeded([1, 1, 1, 2, 1], 43), phiBias: tf.zeros([1]), psi: seeded([1, 1, 1, 1, 1], 44), psiBias: tf.zeros([1]),
    };
    const gated = attentionGate(x as tf.Tensor5D, g as tf.Tensor5D, params);
    const alpha = attentionCoefficients(x as tf.Tensor5D, g as tf.Tensor5D, params);
    assert.deepEqual(alpha.shape, [1, 4, 4, 4, 1]);
    const a = alpha.arraySync()[0];
    for (let d = 0; d < 4; d++) for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) {
      assert.ok(a[d][h][w][0] > 0 && a[d][h][w][0] < 1);
      assert.equal(a[d][h][w][0], a[d & ~1][h & ~1][w & ~1][0]);
    }
    assert.ok(maxAbsDiff(gated, tf.mul(x, alpha)) === 0);
  });
});
