import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { applyDropoutMask } from '../../core/tf/dropout.js';
import { conv3dBiasRelu, multiConv3dBiasRelu, type FusedConvOptions } from '../../core/tf/fused-conv.js';
import { checkGradients } from './finite-difference.js';
import { on, TEST_BACKENDS, values } from './test-backends.js';

type T5 = tf.Tensor5D;
const FD_TOLERANCE = 1e-3; // justified in finite-difference.ts

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** max |a - b| / max |b|. */
async function relativeDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const av = await values(a);
  const bv = await values(b);
  assert.equal(av.length, bv.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < av.length; i++) {
    diff = Math.max(diff, Math.abs(av[i] - bv[i]));
    scale = Math.max(scale, Math.abs(bv[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

type CaseOptions = FusedConvOptions & { strides: number; pad: 'same' | 'valid' };

/** The reference: dropout as x times a constant mask (the op's own mask, taken from ones), then stock ops. */
function unfused(xs: T5[], ws: T5[], b: tf.Tensor, o: CaseOptions): T5 {
  const dropped = o.inputDropout ? [tf.mul(xs[0], applyDropoutMask(tf.ones(xs[0].shape), o.inputDropout)) as T5] : xs;
  const sum = dropped.map((x, i) => tf.conv3d(x, ws[i], o.strides, o.pad)).reduce((acc, c) => tf.add(acc, c));
  return tf.relu(tf.add(sum, b)) as T5;
}

const CASES: { name: string; xShapes: number[][]; kernel: number[]; cout: number; opts: CaseOptions }[] = [
  { name: '3x3x3 same', xShapes: [[1, 4, 3, 5, 2]], kernel: [3, 3, 3], cout: 3, opts: { strides: 1, pad: 'same' } },
  { name: 'batch 2, stride 2 same', xShapes: [[2, 4, 4, 3, 3]], kernel: [3, 3, 3], cout: 2, opts: { strides: 2, pad: 'same' } },
  { name: 'valid, mixed kernel', xShapes: [[1, 5, 4, 4, 2]], kernel: [3, 2, 3], cout: 4, opts: { strides: 1, pad: 'valid' } },
  { name: '1x1x1', xShapes: [[1, 3, 3, 2, 4]], kernel: [1, 1, 1], cout: 3, opts: { strides: 1, pad: 'same' } },
  { name: 'input dropout', xShapes: [[1, 4, 4, 4, 3]], kernel: [3, 3, 3], cout: 3, opts: { strides: 1, pad: 'same', inputDropout: { rate: 0.3, seed: 77 } } },
  { name: 'two inputs (split concat)', xShapes: [[1, 4, 4, 3, 2], [1, 4, 4, 3, 3]], kernel: [3, 3, 3], cout: 2, opts: { strides: 1, pad: 'same' } },
];

function makeCase(c: (typeof CASES)[number], seed: number): { xs: T5[]; ws: T5[]; b: tf.Tensor1D } {
  const xs = c.xShapes.map((s, i) => seeded(s, seed + i) as T5);
  const ws = c.xShapes.map((s, i) => seeded([...c.kernel, s[4], c.cout], seed + 10 + i) as T5);
  const b = seeded([c.cout], seed + 20) as tf.Tensor1D;
  return { xs, ws, b };
}

for (const backend of TEST_BACKENDS) {
  test(`${backend}: conv3dBiasRelu forward equals relu(conv3d + bias)`, on(backend), async () => {
    await initBackend(backend);
    for (const [i, c] of CASES.entries()) {
      const [fused, reference] = tf.tidy(() => {
        const { xs, ws, b } = makeCase(c, 100 * i);
        return [xs.length === 1 ? conv3dBiasRelu(xs[0], ws[0], b, c.opts) : multiConv3dBiasRelu(xs, ws, b, c.opts), unfused(xs, ws, b, c.opts)];
      });
      assert.deepEqual(fused.shape, reference.shape);
      const err = await relativeDiff(fused, reference);
      assert.ok(err <= 1e-6, `${c.name}: relative difference ${err}`);
      const y = await values(fused);
      assert.ok(y.some((v) => v === 0) && y.some((v) => v > 0), `${c.name}: ReLU both active and inactive`);
      tf.dispose([fused, reference]);
    }
  });

  test(`${backend}: conv3dBiasRelu gradients (inputs, kernels, bias) match the unfused composition`, on(backend), async () => {
    await initBackend(backend);
    for (const [i, c] of CASES.entries()) {
      const { inputs, fusedGrads, refGrads } = tf.tidy(() => {
        const { xs, ws, b } = makeCase(c, 100 * i + 7);
        const n = xs.length;
        const upstream = seeded(unfused(xs, ws, b, c.opts).shape, 999 + i);
        const loss = (f: (a: T5[], k: T5[], bias: tf.Tensor1D) => T5) => (...all: tf.Tensor[]) =>
          tf.sum(tf.mul(f(all.slice(0, n) as T5[], all.slice(n, 2 * n) as T5[], all[2 * n] as tf.Tensor1D), upstream));
        const inputs = [...xs, ...ws, b];
        return {
          inputs,
          fusedGrads: tf.grads(loss((a, k, bias) => multiConv3dBiasRelu(a, k, bias, c.opts)))(inputs),
          refGrads: tf.grads(loss((a, k, bias) => unfused(a, k, bias, c.opts)))(inputs),
        };
      });
      for (const [j, g] of fusedGrads.entries()) {
        assert.deepEqual(g.shape, inputs[j].shape);
        const err = await relativeDiff(g, refGrads[j]);
        assert.ok(err < 1e-5, `${c.name}: gradient ${j} relative difference ${err}`);
      }
      tf.dispose([...inputs, ...fusedGrads, ...refGrads]);
    }
  });

  test(`${backend}: conv3dBiasRelu gradients match finite differences`, on(backend), async () => {
    await initBackend(backend);
    for (const [i, c] of CASES.entries()) {
      const { xs, ws, b } = makeCase(c, 100 * i + 3);
      const n = xs.length;
      const f = (...all: tf.Tensor[]) => multiConv3dBiasRelu(all.slice(0, n) as T5[], all.slice(n, 2 * n) as T5[], all[2 * n] as tf.Tensor1D, c.opts);
      // ReLU kinks: a step of 1e-3 rarely crosses one (as for relu in gradients.test.ts).
      const check = await checkGradients(f, [...xs, ...ws, b], { epsilon: 1e-3 });
      assert.ok(check.relativeError < FD_TOLERANCE, `${c.name}: relative error ${check.relativeError}`);
      [...xs, ...ws, b].forEach((t) => t.dispose());
    }
  });

  test(`${backend}: conv3dBiasRelu keeps no forward temporaries and frees its tape after a gradient`, on(backend), async () => {
    await initBackend(backend);
    const { xs, ws, b } = makeCase(CASES[0], 5);
    const before = tf.memory().numTensors;
    const y = conv3dBiasRelu(xs[0], ws[0], b);
    assert.equal(tf.memory().numTensors, before + 1);
    y.dispose();
    const grads = tf.grads((x: tf.Tensor, w: tf.Tensor, bias: tf.Tensor) => tf.sum(conv3dBiasRelu(x as T5, w as T5, bias as tf.Tensor1D)))([xs[0], ws[0], b]);
    assert.equal(tf.memory().numTensors, before + 3);
    grads.forEach((g) => g.dispose());
    [...xs, ...ws, b].forEach((t) => t.dispose());
  });

  test(`${backend}: an input dropout adds at most one input-sized tensor to the gradient's peak memory`, on(backend), async () => {
    await initBackend(backend);
    const x = tf.randomNormal([1, 12, 12, 12, 8], 0, 1, 'float32', 8) as T5;
    const w = tf.randomNormal([3, 3, 3, 8, 8], 0, 0.2, 'float32', 9) as T5;
    const b = tf.zeros([8]) as tf.Tensor1D;
    const peak = async (options: FusedConvOptions) => {
      const info = await tf.profile(() => {
        const y = conv3dBiasRelu(x, w, b, options);
        // The upstream gradient, as the backward pass hands it over (the op frees it once used).
        const grads = tf.grads((xi: tf.Tensor, wi: tf.Tensor) => tf.mul(conv3dBiasRelu(xi as T5, wi as T5, b, options), y))([x, w]);
        grads.forEach((g) => g.dispose());
        y.dispose();
      });
      return info.peakBytes;
    };
    const plain = await peak({});
    const dropped = await peak({ inputDropout: { rate: 0.2, seed: 3 } });
    // The recomputed dropped-out input is freed before the input gradient exists, the unmasked input
    // gradient as soon as it is masked: never the dropped input, dx and the masked dx at once.
    assert.ok(dropped - plain <= x.size * 4, `peak ${dropped} bytes with dropout vs ${plain} without (x is ${x.size * 4})`);
    [x, w, b].forEach((t) => t.dispose());
  });
}
