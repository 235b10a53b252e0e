import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { makeModelConfig } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { SegmentationModel } from '../../core/model/network.js';
import { SeededRandom } from '../../core/model/random.js';
import { generateMiniCase } from '../../core/synth/index.js';
import { initBackend, tf } from '../../core/tf/backend.js';
import { proximalAnchor, proximalTerm, segmentationLoss } from '../../core/train/loss.js';
import { microBatchGradients, type MicroBatch } from '../../core/train/micro-batches.js';
import { NO_AUGMENTATION } from '../../core/train/patches.js';
import { trainLocal } from '../../core/train/trainer.js';

before(async () => {
  await initBackend('cpu');
});

const shape = [8, 8, 8] as const;
const noDropout = makeModelConfig({ baseFilters: 2, depth: 2, inputShape: [...shape], dropout: [0, 0] });
const withDropout = makeModelConfig({ baseFilters: 2, depth: 2, inputShape: [...shape], dropout: [0.3, 0.3] });

/** A batch of `n` random images with labels that put tumour classes in a corner block, as one-hot. */
function batch(n: number, seed: number): { x: tf.Tensor5D; y: tf.Tensor } {
  const rng = new SeededRandom(seed);
  const voxels = shape[0] * shape[1] * shape[2];
  const image = Float32Array.from({ length: n * voxels * 3 }, () => rng.next() * 2 - 1);
  const classes = Int32Array.from({ length: n * voxels }, (_, i) => ((i % voxels) < voxels / 4 ? 1 + (i % 3) : 0));
  return tf.tidy(() => ({ x: tf.tensor5d(image, [n, ...shape, 3]), y: tf.oneHot(tf.tensor4d(classes, [n, ...shape], 'int32'), 4) }));
}

function relativeError(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / Math.max(norm, 1e-30));
}

// Summing each micro-batch's own loss instead (plain accumulation) is off by 1e-3 to 4e-3 here: Dice is not a sum over samples.
test('a batch of 4 run as micro-batches of 1 and 3 gives the whole batch\'s loss and gradient (Dice over the batch, focal, FedProx)', async () => {
  const model = new SegmentationModel(noDropout, initialWeights(noDropout, 7));
  const whole = batch(4, 1);
  const anchor = proximalAnchor(0.5, initialWeights(noDropout, 8));
  const reference = tf.variableGrads(() => tf.add(segmentationLoss(whole.y, model.logits(whole.x, { training: true, seed: 1 })), proximalTerm(model.variables, anchor)) as tf.Scalar, model.variables);
  const parts: MicroBatch[] = [
    { x: tf.slice(whole.x, [0], [1]), y: tf.slice(whole.y, [0], [1]), dropoutSeed: 1 },
    { x: tf.slice(whole.x, [1], [3]), y: tf.slice(whole.y, [1], [3]), dropoutSeed: 2 },
  ];
  const split = microBatchGradients(model, parts, undefined, anchor);
  assert.ok(Math.abs((await split.loss.data())[0] - (await reference.value.data())[0]) < 1e-6, 'same loss');
  assert.deepEqual(Object.keys(split.grads).sort(), Object.keys(reference.grads).sort());
  for (const [name, g] of Object.entries(reference.grads)) {
    const error = relativeError(await split.grads[name].data(), await g.data());
    assert.ok(error < 1e-5, `${name}: relative gradient error ${error}`);
  }
  model.dispose();
});

test('both passes see the same dropout masks: one micro-batch with dropout reproduces the plain step\'s gradient', async () => {
  const model = new SegmentationModel(withDropout, initialWeights(withDropout, 3));
  const { x, y } = batch(2, 5);
  const reference = tf.variableGrads(() => segmentationLoss(y, model.logits(x, { training: true, seed: 42 })), model.variables);
  const split = microBatchGradients(model, [{ x, y, dropoutSeed: 42 }], undefined, undefined);
  assert.ok(Math.abs((await split.loss.data())[0] - (await reference.value.data())[0]) < 1e-6);
  for (const [name, g] of Object.entries(reference.grads)) {
    const error = relativeError(await split.grads[name].data(), await g.data());
    assert.ok(error < 1e-5, `${name}: relative gradient error ${error}`);
  }
  model.dispose();
});

test('trainLocal with micro-batches of 1 ends where the batch-of-2 run ends (no dropout): same case count, loss and weights to float rounding', async () => {
  const cases = await Promise.all([0, 1, 2, 3].map(async (caseIndex) => {
    const mini = await generateMiniCase({ size: 16, site: 1, caseIndex });
    return { caseId: mini.caseId, image: mini.image, classes: mini.classes! };
  }));
  const config = makeModelConfig({ baseFilters: 4, depth: 2, inputShape: [16, 16, 16], dropout: [0, 0] });
  const run = async (microBatch: number) => {
    const model = new SegmentationModel(config, initialWeights(config, 9));
    const result = await trainLocal({ model, data: cases, epochs: 2, batchSize: 2, microBatch, learningRate: 1e-3, seed: 4, augmentation: NO_AUGMENTATION });
    model.dispose();
    return result;
  };
  const whole = await run(2);
  const parts = await run(1);
  assert.equal(parts.numCases, whole.numCases);
  assert.ok(Math.abs(parts.metrics.loss - whole.metrics.loss) < 1e-5, `loss ${parts.metrics.loss} vs ${whole.metrics.loss}`);
  parts.weights.forEach((t, i) => {
    const error = relativeError(t.data, whole.weights[i].data);
    assert.ok(error < 1e-4, `${t.name}: relative difference ${error} after 4 Adam steps`);
  });
  await assert.rejects(trainLocal({ model: new SegmentationModel(config, initialWeights(config, 9)), data: cases, epochs: 1, batchSize: 2, microBatch: 0.5 }), /microBatch/);
});
