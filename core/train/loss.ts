/**
 * The original project's loss: segmentation_models' DiceLoss(class_weights = 0.25 each) +
 * CategoricalFocalLoss(alpha 0.25, gamma 2), plus FedProx's proximal term.
 *
 * The loss takes the network's logits, not its probabilities. segmentation_models computes the focal
 * term as log(clip(p, eps, 1 - eps)); once a model becomes certain that every voxel is background
 * (p_tumour < eps) that clip has zero gradient, the softmax Jacobian vanishes for the Dice term too,
 * and training can never leave the all-background state. This is what stopped the Attention U-Net
 * (issue 15) after a few dozen Adam steps at lr 1e-3. From logits, log p = logSoftmax(z) needs no clip
 * and a wrongly certain voxel keeps its full cross-entropy gradient p - y.
 *
 * Two deliberate differences from segmentation_models, which was written for 2D images:
 * - Dice sums over the batch and all three spatial axes (sm's reduce axes [0, 1, 2] on 5D tensors
 *   would compute a separate Dice per W-slice);
 * - the class-weighted Dice is normalised by the sum of the weights (sm multiplies by the weights and
 *   then averages over classes, which with 0.25 each scales the Dice term by 1/4 and caps how far the
 *   loss can fall). With equal weights this is 1 - mean Dice over the classes.
 */
import { tf } from '../tf/backend.js';
import { softmaxStats } from '../tf/softmax-stats.js';
import type { NamedTensor } from '../weights/types.js';

export interface LossOptions {
  /** Dice weight per class (default 0.25 each for 4 classes). */
  classWeights?: readonly number[];
  focalAlpha?: number;
  focalGamma?: number;
  /** Dice smoothing term (segmentation_models: 1e-5). */
  smooth?: number;
}

/** Per-class sums over batch + space that the soft Dice needs: each of shape [numClasses]. */
export interface DiceSums {
  /** sum(y * p): the soft true positives. */
  overlap: tf.Tensor1D;
  /** sum(p). */
  predicted: tf.Tensor1D;
  /** sum(y). */
  truth: tf.Tensor1D;
}

/** What the loss needs of one (micro-)batch: its Dice sums and its focal sum, differentiable in the logits. */
export interface LossStats extends DiceSums {
  /** sum over voxels and classes of y (1 - p)^gamma (-log p). */
  focal: tf.Scalar;
  /** Label entries (voxels x classes) the focal sum is averaged over. */
  entries: number;
}

/** The batch's statistics from logits z and one-hot labels y, in one pass (core/tf/softmax-stats.ts). */
export function lossStats(yTrue: tf.Tensor, logits: tf.Tensor, options: LossOptions = {}): LossStats {
  const classes = yTrue.shape[yTrue.rank - 1];
  const sums = tf.tidy(() => {
    const [overlap, predicted, truth, focal] = tf.split(softmaxStats(logits, yTrue, options.focalGamma ?? 2), [classes, classes, classes, 1]);
    return { overlap, predicted, truth, focal: tf.reshape(focal, []) };
  }) as Omit<LossStats, 'entries'>;
  return { ...sums, entries: yTrue.size };
}

/** Per-class soft Dice (2 tp + s) / (2 tp + fn + fp + s) from the sums: shape [numClasses]. */
export function softDiceFromSums(sums: DiceSums, smooth = 1e-5): tf.Tensor1D {
  return tf.tidy(() => {
    const twoTp = tf.mul(sums.overlap, 2);
    const fn = tf.sub(sums.truth, sums.overlap);
    const fp = tf.sub(sums.predicted, sums.overlap);
    return tf.div(tf.add(twoTp, smooth), tf.add(tf.add(tf.add(twoTp, fn), fp), smooth)) as tf.Tensor1D;
  });
}

/** 1 - weighted mean of the per-class soft Dice, from the sums (also for sums gathered over micro-batches). */
export function diceLossFromSums(sums: DiceSums, options: LossOptions = {}): tf.Scalar {
  return tf.tidy(() => {
    const classes = sums.overlap.shape[0];
    const weights = tf.tensor1d(options.classWeights ? [...options.classWeights] : new Array(classes).fill(1 / classes));
    const weighted = tf.div(tf.sum(tf.mul(softDiceFromSums(sums, options.smooth), weights)), tf.sum(weights));
    return tf.sub(1, weighted) as tf.Scalar;
  });
}

/** Mean over every voxel and class of -y * alpha * (1 - p)^gamma * log(p), from the focal sum over `entries` label entries. */
export function focalLossFromSum(focal: tf.Scalar, entries: number, options: LossOptions = {}): tf.Scalar {
  return tf.mul(focal, (options.focalAlpha ?? 0.25) / entries);
}

/**
 * Dice (on softmax probabilities) + focal (on log-softmax, no clipping: see the header), the training
 * objective, from the network's logits. The statistics kernel keeps no full-size temporaries for the
 * backward pass, which recomputes the softmax from the logits.
 */
export function segmentationLoss(yTrue: tf.Tensor, logits: tf.Tensor, options: LossOptions = {}): tf.Scalar {
  return tf.tidy(() => {
    const stats = lossStats(yTrue, logits, options);
    return tf.add(diceLossFromSums(stats, options), focalLossFromSum(stats.focal, stats.entries, options)) as tf.Scalar;
  });
}

/** Frozen global weights for FedProx, as constant tensors aligned with the model's variables. */
export interface ProximalAnchor {
  mu: number;
  anchors: tf.Tensor[];
}

/** Uploads the global weights once per round; release with `disposeProximal`. */
export function proximalAnchor(mu: number, globalWeights: readonly NamedTensor[]): ProximalAnchor {
  return { mu, anchors: globalWeights.map((w) => tf.tensor(w.data, w.shape, 'float32')) };
}

export function disposeProximal(anchor: ProximalAnchor): void {
  for (const t of anchor.anchors) t.dispose();
}

/** FedProx proximal term mu/2 * sum_i ||w_i - w_global_i||^2 (Li et al. 2020). */
export function proximalTerm(variables: readonly tf.Tensor[], anchor: ProximalAnchor): tf.Scalar {
  return tf.tidy(() => {
    const squared = variables.map((v, i) => tf.sum(tf.square(tf.sub(v, anchor.anchors[i]))));
    return tf.mul(tf.addN(squared), anchor.mu / 2) as tf.Scalar;
  });
}
