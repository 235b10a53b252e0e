/**
 * One optimiser step's gradient for a batch that is run as several smaller forward/backward passes
 * (micro-batches), exactly: the same loss and gradient as the whole batch at once, up to float
 * rounding. A 128^3 batch of 2 needs more than the wasm backend's 4 GB heap; as two passes of one
 * it fits.
 *
 * Plain gradient accumulation is not exact here, because the Dice term sums over the whole batch
 * before dividing. So each step makes two passes over its micro-batches:
 *   1. forward only: each micro-batch's per-class Dice sums (overlap, sum p, sum y), added up;
 *   2. forward + backward per micro-batch of the surrogate  g . sums_m + focal_m * n_m / N,
 *      where g = d(Dice loss)/d(sums) at the batch's totals. By the chain rule the surrogates'
 *      gradients add up to the batch loss's gradient.
 * Both passes give a micro-batch the same dropout seed, so they see the same masks. The second
 * forward costs about a third of a step more than one pass of the whole batch would.
 */
import type { SegmentationModel } from '../model/network.js';
import { tf } from '../tf/backend.js';
import { diceLossFromSums, focalLossFromSum, lossStats, proximalTerm, type DiceSums, type LossOptions, type ProximalAnchor } from './loss.js';

export interface MicroBatch {
  x: tf.Tensor5D;
  /** One-hot labels. */
  y: tf.Tensor;
  dropoutSeed: number;
}

/** The batch loss (Dice over all micro-batches + focal + proximal) and its gradient per variable name. */
export function microBatchGradients(
  model: SegmentationModel, parts: readonly MicroBatch[], lossOptions: LossOptions | undefined, anchor: ProximalAnchor | undefined,
): { loss: tf.Scalar; grads: tf.NamedTensorMap } {
  const samples = parts.reduce((n, p) => n + p.x.shape[0], 0);
  // Pass 1: the batch's Dice sums, without gradients.
  const totals = tf.tidy(() => {
    const each = parts.map((p) => lossStats(p.y, model.logits(p.x, { training: true, seed: p.dropoutSeed }), lossOptions));
    return { overlap: tf.addN(each.map((s) => s.overlap)), predicted: tf.addN(each.map((s) => s.predicted)), truth: tf.addN(each.map((s) => s.truth)) };
  }) as DiceSums;
  const [gOverlap, gPredicted] = tf.grads((overlap: tf.Tensor, predicted: tf.Tensor) =>
    diceLossFromSums({ overlap: overlap as tf.Tensor1D, predicted: predicted as tf.Tensor1D, truth: totals.truth }, lossOptions))([totals.overlap, totals.predicted]);

  // Pass 2: each micro-batch's share of the gradient, summed per variable.
  const grads: tf.NamedTensorMap = {};
  // The batch loss minus its Dice term: the micro-batches' focal shares and the proximal term.
  let rest = tf.scalar(0);
  parts.forEach((p, i) => {
    const share = p.x.shape[0] / samples;
    let diceCarrier: tf.Scalar | undefined;
    const { value, grads: partGrads } = tf.variableGrads(() => {
      const logits = model.logits(p.x, { training: true, seed: p.dropoutSeed });
      const stats = lossStats(p.y, logits, lossOptions);
      // [Dice carrier, focal share]. The carrier is not a loss value, only its gradient matters: the
      // chain rule through the batch's Dice sums.
      const carrier = tf.add(tf.sum(tf.mul(gOverlap, stats.overlap)), tf.sum(tf.mul(gPredicted, stats.predicted)));
      const terms = tf.stack([carrier, tf.mul(focalLossFromSum(stats.focal, stats.entries, lossOptions), share)]);
      diceCarrier = tf.keep(tf.reshape(tf.slice(terms, [0], [1]), []) as tf.Scalar);
      const termSum = tf.sum(terms);
      // The proximal term belongs to the batch once: the last micro-batch carries it.
      return (anchor && i === parts.length - 1 ? tf.add(termSum, proximalTerm(model.variables, anchor)) : termSum) as tf.Scalar;
    }, model.variables);
    const before = rest;
    rest = tf.tidy(() => tf.add(before, tf.sub(value, diceCarrier!)) as tf.Scalar);
    for (const t of [before, value, diceCarrier!]) t.dispose();
    for (const [name, g] of Object.entries(partGrads)) {
      const sum = grads[name];
      if (!sum) {
        grads[name] = g;
        continue;
      }
      grads[name] = tf.add(sum, g);
      sum.dispose();
      g.dispose();
    }
  });
  const loss = tf.tidy(() => tf.add(diceLossFromSums(totals, lossOptions), rest) as tf.Scalar);
  for (const t of [totals.overlap, totals.predicted, totals.truth, gOverlap, gPredicted, rest]) t.dispose();
  return { loss, grads };
}

/**
 * Voxels x base filters of the largest sample whose training step fits the wasm backend's heap (a
 * wasm32 memory of at most 4 GB), with the original project's dropout and Dice + focal loss. Measured
 * on this project's 2-core machine with a 16-filter, 5-level U-Net: one 128^3 sample grows the heap
 * to 2.9 GB (seeded dropout, checkpointed loss and upsampling); two do not fit.
 */
const WASM_SAMPLE_BUDGET = 128 ** 3 * 16;

/** Most samples one forward/backward pass of `config` may hold on the wasm backend; 0 when not even one fits. */
export function wasmMicroBatch(config: { inputShape: readonly number[]; baseFilters: number }): number {
  const voxels = config.inputShape.reduce((a, b) => a * b, 1);
  return Math.floor(WASM_SAMPLE_BUDGET / (voxels * config.baseFilters));
}
