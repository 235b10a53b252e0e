import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import {
  diceLossFromSums, disposeProximal, focalLossFromSum, lossStats, proximalAnchor, proximalTerm, segmentationLoss, softDiceFromSums, type LossOptions,
} from '../../core/train/loss.js';
import { initBackend, tf } from '../../core/tf/backend.js';

before(async () => {
  await initBackend('cpu');
});

// Two voxels, two classes: voxel A is class 0 predicted [0.8, 0.2]; voxel B is class 1 predicted [0.4, 0.6].
const truth = () => tf.tensor5d([1, 0, 0, 1], [1, 1, 1, 2, 2]);
const pred = () => tf.tensor5d([0.8, 0.2, 0.4, 0.6], [1, 1, 1, 2, 2]);
// Logits whose softmax is pred() (each voxel's probabilities sum to 1, so log p is a valid choice).
const logits = () => tf.log(pred());
const close = (actual: number, expected: number, tol = 1e-6) => assert.ok(Math.abs(actual - expected) < tol, `${actual} vs ${expected}`);

/** Runs `f` on the statistics of truth() against `z` and releases them. */
function withStats<T>(z: tf.Tensor, f: (stats: ReturnType<typeof lossStats>) => T, options: LossOptions = {}): T {
  const y = truth();
  const stats = lossStats(y, z, options);
  try {
    return f(stats);
  } finally {
    tf.dispose([y, z, stats.overlap, stats.predicted, stats.truth, stats.focal]);
  }
}

test('soft Dice per class matches a hand computation', () => {
  // class 0: tp 0.8, fp 0.4, fn 0.2 -> 1.6 / 2.2; class 1: tp 0.6, fp 0.2, fn 0.4 -> 1.2 / 1.8 (smooth 1e-5).
  const d = withStats(logits(), (stats) => tf.tidy(() => softDiceFromSums(stats).dataSync()));
  close(d[0], (1.6 + 1e-5) / (2.2 + 1e-5));
  close(d[1], (1.2 + 1e-5) / (1.8 + 1e-5));
});

test('weighted Dice loss is 1 - the weight-normalised mean Dice', () => {
  const d0 = 1.6 / 2.2;
  const d1 = 1.2 / 1.8;
  close(withStats(logits(), (stats) => tf.tidy(() => diceLossFromSums(stats).dataSync()[0])), 1 - (d0 + d1) / 2, 1e-5);
  const weights = { classWeights: [0.25, 0.75] };
  close(withStats(logits(), (stats) => tf.tidy(() => diceLossFromSums(stats, weights).dataSync()[0])), 1 - (0.25 * d0 + 0.75 * d1), 1e-5);
  close(withStats(tf.tensor5d([200, -200, -200, 200], [1, 1, 1, 2, 2]), (stats) => tf.tidy(() => diceLossFromSums(stats).dataSync()[0])), 0, 1e-6);
});

const focalByHand = (alpha: number) => (alpha * 0.2 ** 2 * -Math.log(0.8) + alpha * 0.4 ** 2 * -Math.log(0.6)) / 4;

test('categorical focal loss (alpha 0.25, gamma 2) matches a hand computation, averaged over voxels and classes', () => {
  const focal = (z: tf.Tensor, options: LossOptions = {}) => withStats(z, (stats) => tf.tidy(() => focalLossFromSum(stats.focal, stats.entries, options).dataSync()[0]), options);
  close(focal(logits()), focalByHand(0.25));
  close(focal(logits(), { focalAlpha: 1 }), focalByHand(1));
  // Certain, correct predictions give a finite loss of 0, not log(0) elsewhere.
  close(focal(tf.tensor5d([200, -200, -200, 200], [1, 1, 1, 2, 2])), 0);
});

test('a model certain of the wrong class still gets a gradient (the saturation that froze the Attention U-Net)', () => {
  // Voxel B is class 1 but the logits say background with p(class 1) = e^-40, far below float32's 1e-7 clip.
  const wrong = tf.variable(tf.tensor5d([5, -5, 20, -20], [1, 1, 1, 2, 2]));
  const { grads } = tf.variableGrads(() => segmentationLoss(truth(), wrong), [wrong]);
  const g = grads[wrong.name].dataSync();
  // Cross-entropy's p - y on voxel B: pushes the background logit down and class 1 up.
  assert.ok(g[2] > 1e-3 && g[3] < -1e-3, `gradient on the wrongly certain voxel: ${Array.from(g)}`);
  wrong.dispose();
});

test('the training loss is Dice on softmax(logits) + focal on the logits', () => {
  const total = tf.tidy(() => segmentationLoss(truth(), logits()).dataSync()[0]);
  close(total, 1 - (1.6 / 2.2 + 1.2 / 1.8) / 2 + focalByHand(0.25), 1e-5);
});

test('FedProx term is mu/2 ||w - w_global||^2 with gradient mu (w - w_global)', () => {
  const w = [tf.variable(tf.tensor1d([1, 2, 3])), tf.variable(tf.tensor2d([[0.5, -1]]))];
  const global = [
    { name: 'a', shape: [3], data: Float32Array.from([1, 0, 1]) },
    { name: 'b', shape: [1, 2], data: Float32Array.from([0.5, 1]) },
  ];
  const anchor = proximalAnchor(0.1, global);
  close(tf.tidy(() => proximalTerm(w, anchor).dataSync()[0]), (0.1 / 2) * (0 + 4 + 4 + 0 + 4), 1e-6);
  const { grads } = tf.variableGrads(() => proximalTerm(w, anchor), w);
  assert.deepEqual(Array.from(grads[w[0].name].dataSync()).map((g) => +g.toFixed(6)), [0, 0.2, 0.2]);
  assert.deepEqual(Array.from(grads[w[1].name].dataSync()).map((g) => +g.toFixed(6)), [0, -0.2]);
  disposeProximal(anchor);
});
