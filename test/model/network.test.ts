import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { makeModelConfig, type ModelConfig } from '../../core/model/config.js';
import { createModel, forwardMacs } from '../../core/model/network.js';
import { parameterCount, parameterSpecs } from '../../core/model/parameters.js';
import { initBackend, tf } from '../../core/tf/backend.js';

before(async () => {
  await initBackend('cpu');
});

const small = (overrides: Partial<ModelConfig> = {}) => makeModelConfig({ baseFilters: 4, depth: 3, inputShape: [16, 16, 16], ...overrides });

test('the default config is the original project: U-Net 16..256 filters, dropout 0.1,0.1,0.2,0.2,0.3, 4 classes from 3 channels', () => {
  const config = makeModelConfig();
  assert.deepEqual(config.dropout, [0.1, 0.1, 0.2, 0.2, 0.3]);
  const enc = parameterSpecs(config).filter((p) => /^enc\d\.conv2\.kernel$/.test(p.name)).map((p) => p.shape[4]);
  assert.deepEqual(enc, [16, 32, 64, 128, 256]);
  assert.deepEqual(parameterSpecs(config)[0].shape, [3, 3, 3, 3, 16]);
  assert.deepEqual(parameterSpecs(config).at(-2)!.shape, [1, 1, 1, 16, 4]);
  // Same parameter count as the Keras original (simple_unet_model 128^3x3 -> 4 classes): 5,645,828.
  assert.equal(parameterCount(config), 5_645_828);
  assert.throws(() => makeModelConfig({ depth: 3, inputShape: [18, 16, 16] }), /not divisible by 2\^\(depth-1\) = 4/);
  assert.throws(() => makeModelConfig({ depth: 3, dropout: [0.1] }), /one rate per level/);
});

for (const arch of ['unet', 'attention-unet'] as const) {
  for (const upsampling of ['transpose', 'nearest'] as const) {
    test(`${arch} (${upsampling}) maps [n, d, h, w, 3] to per-voxel class probabilities`, () => {
      const model = createModel(small({ arch, upsampling }), 1);
      tf.tidy(() => {
        const x = tf.randomUniform([2, 16, 8, 16, 3], 0, 1, 'float32', 5);
        const y = model.predict(x);
        assert.deepEqual(y.shape, [2, 16, 8, 16, 4]);
        const sums = tf.sum(y, -1).dataSync();
        assert.ok(sums.every((s) => Math.abs(s - 1) < 1e-5));
        assert.ok(y.dataSync().every((p) => p >= 0 && p <= 1));
      });
      model.dispose();
    });
  }
}

test('attention U-Net adds gate parameters on every skip and nothing else', () => {
  const unet = parameterSpecs(small()).map((p) => p.name);
  const att = parameterSpecs(small({ arch: 'attention-unet' })).map((p) => p.name);
  const extra = att.filter((n) => !unet.includes(n));
  assert.deepEqual(extra.sort(), ['att0.phi.bias', 'att0.phi.kernel', 'att0.psi.bias', 'att0.psi.kernel', 'att0.theta.kernel', 'att1.phi.bias', 'att1.phi.kernel', 'att1.psi.bias', 'att1.psi.kernel', 'att1.theta.kernel']);
  assert.ok(unet.every((n) => att.includes(n)));
});

test('same seed -> same weights and predictions; training-mode dropout is seeded and only active in training', () => {
  const config = small({ arch: 'attention-unet' });
  const a = createModel(config, 9);
  const b = createModel(config, 9);
  tf.tidy(() => {
    const x = tf.randomUniform([1, 16, 16, 16, 3], 0, 1, 'float32', 3);
    assert.deepEqual(a.predict(x).dataSync(), b.predict(x).dataSync());
    const t1 = a.forward(x, { training: true, seed: 4 }).dataSync();
    assert.deepEqual(t1, b.forward(x, { training: true, seed: 4 }).dataSync());
    assert.notDeepEqual(t1, a.forward(x, { training: true, seed: 5 }).dataSync());
    assert.notDeepEqual(t1, a.predict(x).dataSync());
  });
  a.dispose();
  b.dispose();
});

test('getWeights/setWeights round-trip exactly and refuse weights of another architecture', async () => {
  const a = createModel(small(), 1);
  const b = createModel(small(), 2);
  b.setWeights(await a.getWeights());
  assert.deepEqual(await b.getWeights(), await a.getWeights());
  tf.tidy(() => {
    const x = tf.randomUniform([1, 16, 16, 16, 3], 0, 1, 'float32', 3);
    assert.deepEqual(a.predict(x).dataSync(), b.predict(x).dataSync());
  });
  const other = createModel(small({ baseFilters: 8 }), 1);
  const otherWeights = await other.getWeights();
  assert.throws(() => a.setWeights(otherWeights), (e: unknown) => e instanceof FedSegError && /shape/.test(e.message));
  for (const m of [a, b, other]) m.dispose();
});

test('input of the wrong rank, channel count or size is a clear error', () => {
  const model = createModel(small(), 1);
  tf.tidy(() => {
    assert.throws(() => model.predict(tf.zeros([1, 16, 16, 16, 4])), /\[n, d, h, w, 3\] with d, h, w divisible by 4; got \[1,16,16,16,4\]/);
    assert.throws(() => model.predict(tf.zeros([1, 18, 16, 16, 3])), FedSegError);
  });
  model.dispose();
});

test('predict releases every intermediate tensor', () => {
  const model = createModel(small({ arch: 'attention-unet' }), 1);
  const x = tf.zeros([1, 16, 16, 16, 3]);
  const before = tf.memory().numTensors;
  model.predict(x).dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});

test('an inference pass frees each activation once consumed; under a gradient tape it keeps them, with the same values', () => {
  for (const arch of ['unet', 'attention-unet'] as const) {
    const model = createModel(small({ arch }), 1);
    const x = tf.randomUniform([1, 16, 16, 16, 3], 0, 1, 'float32', 4);
    // Outside any tidy: whatever outlives the pass besides the logits is an activation not freed.
    const alive = (run: () => tf.Tensor) => {
      const before = tf.memory().numBytes;
      const logits = run();
      return { logits, extraBytes: tf.memory().numBytes - before - logits.size * 4 };
    };
    const inference = alive(() => model.logits(x, { training: false }));
    // Only the decoder's split kernel slices (weights, 17 KB) remain; the smallest 16^3 activation is 64 KB.
    assert.ok(inference.extraBytes < 16 ** 3 * 4 * 4, `${arch}: ${inference.extraBytes} bytes of activations left`);
    let taped: { values: Float32Array; extraBytes: number } = { values: new Float32Array(0), extraBytes: 0 };
    const grad = tf.grad((input: tf.Tensor) => {
      const { logits, extraBytes } = alive(() => model.logits(input, { training: false }));
      taped = { values: logits.dataSync() as Float32Array, extraBytes };
      return tf.sum(logits);
    })(x);
    assert.ok(taped.extraBytes > 4 * 16 ** 3 * 4 * 4, `${arch}: the tape kept the activations (${taped.extraBytes} bytes)`);
    assert.deepEqual(taped.values, inference.logits.dataSync());
    for (const t of [x, grad, inference.logits]) t.dispose();
    model.dispose();
  }
});

test('forward MAC count matches a hand count for a depth-2 U-Net', () => {
  const config = makeModelConfig({ baseFilters: 2, depth: 2, inputShape: [4, 4, 4] });
  const v = 64;
  const expected = 27 * 3 * 2 * v + 27 * 2 * 2 * v + (27 * 2 * 4 + 27 * 4 * 4) * (v / 8) + 4 * 8 * 2 * (v / 8) + (27 * 4 * 2 + 27 * 2 * 2) * v + 2 * 4 * v;
  assert.equal(forwardMacs(config), expected);
});
