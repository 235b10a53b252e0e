/**
 * The native addon's seeded dropout against core/tf/dropout.ts's JavaScript loop: the same voxels
 * dropped and the same scaled values, bit for bit (the JS loop is itself checked against the WGSL
 * shader in test/tf/memory-ops.test.ts), on odd lengths that split into uneven threaded pieces, and
 * through the kernel and the fused convolution's gradient on the cpu and wasm backends.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conv3dBiasRelu } from '../../core/tf/fused-conv.js';
import { DROPOUT_KERNEL, applyDropoutMask, dropoutConstants, dropoutRaw, registerDropoutKernel } from '../../core/tf/dropout.js';
import { initBackend, tf } from '../../core/tf/backend.js';
import { installNativeKernels, loadNativeAddon, nativeEngineStatus } from '../../core/tf/native-engine.js';

const addon = loadNativeAddon();
const skipReason = addon ? false : `native addon unavailable: ${nativeEngineStatus()}`;
if (skipReason) console.log(`# skipping native dropout tests: ${skipReason}`);

/** Values with both signs, zeros of both signs, tiny and huge magnitudes, infinities. */
function awkwardValues(n: number, salt: number): Float32Array {
  const x = new Float32Array(n);
  const special = [0, -0, 1e-40, -1e-40, 3.4e38, -3.4e38, Infinity, -Infinity];
  for (let i = 0; i < n; i++) x[i] = i % 97 === 0 ? special[(i / 97 + salt) % special.length] : Math.sin(i * 12.9898 + salt) * 1e3;
  return x;
}

function sameBits(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, the JS loop gives ${expected[i]}`);
}

describe('native seeded dropout vs the JavaScript loop', { skip: skipReason }, () => {
  it('is bit-identical on odd lengths (single and threaded pieces), rates, seeds and values', () => {
    // 65536 floats is one piece: below runs on the calling thread, above splits with a ragged last piece.
    for (const n of [1, 7, 1023, 65535, 65537, 200_003]) {
      for (const rate of [0, 0.1, 0.3, 0.5, 0.99]) {
        for (const seed of [0, 1, 123_456_789, 0xffffffff]) {
          const x = awkwardValues(n, seed % 7);
          const expected = new Float32Array(n);
          dropoutRaw(x, rate, seed, expected);
          const actual = new Float32Array(n).fill(Number.NaN);
          const { threshold, scale } = dropoutConstants(rate);
          addon!.dropout(x, seed, threshold, scale, actual);
          sameBits(actual, expected, `n ${n}, rate ${rate}, seed ${seed}`);
        }
      }
    }
  });

  it('rejects overlapping buffers, mismatched lengths and malformed seeds', () => {
    const buffer = new Float32Array(100);
    const { threshold, scale } = dropoutConstants(0.2);
    assert.throws(() => addon!.dropout(buffer.subarray(0, 60), 1, threshold, scale, buffer.subarray(40)), /must not overlap/);
    assert.throws(() => addon!.dropout(new Float32Array(5), 1, threshold, scale, new Float32Array(6)), /as many elements/);
    assert.throws(() => addon!.dropout(new Float32Array(5), -1, threshold, scale, new Float32Array(5)), /seed must be an integer/);
    assert.throws(() => addon!.dropout(new Float32Array(5), 1.5, threshold, scale, new Float32Array(5)), /seed must be an integer/);
    assert.throws(() => addon!.dropout(new Float32Array(5), 2 ** 32, threshold, scale, new Float32Array(5)), /seed must be an integer/);
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    it(`${backend}: the kernel and the fused convolution's gradient match the JavaScript kernel bit for bit`, async () => {
      await initBackend(backend);
      assert.ok(installNativeKernels(backend).includes(DROPOUT_KERNEL), 'initBackend installed the native dropout kernel');
      const x = tf.randomNormal([1, 9, 5, 11, 3], 0, 1, 'float32', 5) as tf.Tensor5D;
      const w = tf.randomNormal([3, 3, 3, 3, 4], 0, 0.3, 'float32', 6) as tf.Tensor5D;
      const b = tf.randomNormal([4], 0, 0.1, 'float32', 7) as tf.Tensor1D;
      const spec = { rate: 0.3, seed: 4242 };
      const run = () => {
        const masked = applyDropoutMask(x, spec);
        const { value, grads } = tf.valueAndGrads((xi: tf.Tensor, wi: tf.Tensor) =>
          tf.sum(tf.square(conv3dBiasRelu(xi as tf.Tensor5D, wi as tf.Tensor5D, b, { inputDropout: spec }))))([x, w]);
        return [masked, value, ...grads].map((t) => {
          const data = t.dataSync() as Float32Array;
          t.dispose();
          return data;
        });
      };
      const native = run();
      const expected = new Float32Array(x.size);
      dropoutRaw(x.dataSync() as Float32Array, spec.rate, spec.seed, expected);
      sameBits(native[0], expected, 'the native kernel vs the raw loop');
      // Swap only the dropout kernel back to the JavaScript one (the other native kernels stay).
      const nativeKernel = tf.getKernel(DROPOUT_KERNEL, backend)!;
      tf.unregisterKernel(DROPOUT_KERNEL, backend);
      registerDropoutKernel(backend);
      try {
        const js = run();
        ['mask', 'loss', 'dL/dx', 'dL/dw'].forEach((what, i) => sameBits(native[i], js[i], `${backend} ${what}`));
      } finally {
        tf.unregisterKernel(DROPOUT_KERNEL, backend);
        tf.registerKernel(nativeKernel);
        for (const t of [x, w, b]) t.dispose();
      }
    });
  }
});
