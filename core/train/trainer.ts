import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { FedSegError } from '../errors.js';
import type { SegmentationModel } from '../model/network.js';
import { SeededRandom } from '../model/random.js';
import { describeBackend, tf } from '../tf/backend.js';
import { saveModelFile, type ModelMeta } from '../weights/index.js';
import type { NamedTensor } from '../weights/types.js';
import { CaseStore, type TrainingCase } from './data.js';
import { disposeProximal, proximalAnchor, proximalTerm, segmentationLoss, type LossOptions, type ProximalAnchor } from './loss.js';
import { checkPatchFits, DEFAULT_AUGMENTATION, extractPatch, NO_AUGMENTATION, samplePatch, samplePatchOrigin, type Augmentation, type Patch, type PatchSampling, type Shape3 } from './patches.js';
import { microBatchGradients, type MicroBatch } from './micro-batches.js';
import { RegionDiceAccumulator, type PatchRegionDice } from './region-dice.js';

export type TrainProgress =
  | { type: 'start'; epochs: number; stepsPerEpoch: number; trainCases: number; validationCases: number; batchSize: number; patch: Shape3; backend: string }
  | { type: 'step'; epoch: number; epochs: number; step: number; stepsPerEpoch: number; loss: number; epochLoss: number; elapsedSeconds: number; etaSeconds: number }
  | { type: 'epoch'; epoch: number; epochs: number; loss: number; validation?: ValidationResult; seconds: number; checkpoint?: string };

export interface ValidationResult {
  loss: number;
  /** Hard Dice per region over the validation patches. */
  dice: PatchRegionDice;
}

/** Cases to train on: a plain list or a store (all training), or prepared train/validation stores. */
export type TrainingInput = readonly TrainingCase[] | CaseStore | { train: CaseStore | readonly TrainingCase[]; validation?: CaseStore | readonly TrainingCase[] };

export interface TrainLocalOptions {
  model: SegmentationModel;
  data: TrainingInput;
  epochs: number;
  /** Default 2 (the original project). */
  batchSize?: number;
  /**
   * Most patches in one forward/backward pass (default: the batch size). A larger batch is run as
   * micro-batches with the exact batch gradient (core/train/micro-batches.ts), for memory.
   */
  microBatch?: number;
  /** Adam learning rate, default 1e-4 (the original project). */
  learningRate?: number;
  /** Patch size; default the model's inputShape. */
  patch?: Shape3;
  /** Patches drawn from each training case per epoch (default 1). */
  patchesPerCase?: number;
  /** Probability of centring a patch on tumour (default 0.67). */
  tumourBias?: number;
  /** Training augmentation (default DEFAULT_AUGMENTATION: flips and per-channel intensity gain/offset). */
  augmentation?: Augmentation;
  /** Seeds case order, patches and dropout: same seed + same backend (cpu/wasm) -> same weights. */
  seed?: number;
  loss?: LossOptions;
  /** FedProx: adds mu/2 * ||w - w_global||^2 to the loss when mu > 0. */
  proximal?: { mu: number; globalWeights: readonly NamedTensor[] };
  onProgress?: (event: TrainProgress) => void;
  /** Aborting stops before the next step; trainLocal then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Model file written (atomically) after every epoch. */
  checkpointPath?: string;
  checkpointMeta?: ModelMeta;
}

export interface TrainMetrics {
  /** Mean training loss of the last epoch. */
  loss: number;
  validation?: ValidationResult;
  epochs: number;
  steps: number;
  seconds: number;
}

export interface TrainResult {
  weights: NamedTensor[];
  /** Training cases used (n_k for FedAvg). */
  numCases: number;
  metrics: TrainMetrics;
}

function asStore(cases: CaseStore | readonly TrainingCase[] | undefined): CaseStore {
  if (cases instanceof CaseStore) return cases;
  return new CaseStore(cases ?? []);
}

function stack(patches: readonly Patch[], patch: Shape3, channels: number): { x: tf.Tensor5D; y: tf.Tensor } {
  const voxels = patch[0] * patch[1] * patch[2];
  // One patch (the seed's 128^3 micro-batches) goes straight into the backend: a JavaScript copy of a
  // 25 MB image would still be uncollected garbage when the backward pass peaks.
  const image = patches.length === 1 ? patches[0].image : new Float32Array(patches.length * voxels * channels);
  const classes = new Int32Array(patches.length * voxels);
  patches.forEach((p, i) => {
    if (image !== p.image) image.set(p.image, i * voxels * channels);
    classes.set(p.classes, i * voxels);
  });
  return tf.tidy(() => ({
    x: tf.tensor5d(image, [patches.length, ...patch, channels]),
    // float32 one-hot, the form the loss kernels read (core/tf/softmax-stats.ts); built in the backend,
    // whose temporaries are reused by the activations that follow.
    y: tf.cast(tf.oneHot(tf.tensor4d(classes, [patches.length, ...patch], 'int32'), 4), 'float32'),
  }));
}

/**
 * Trains `model` in place on local cases for `epochs` epochs of random (tumour-biased) patches and
 * returns the new weights, the case count and metrics. This is what a federation site runs each
 * round and what `fedseg train` runs once.
 */
export async function trainLocal(options: TrainLocalOptions): Promise<TrainResult> {
  const { model, epochs, onProgress, signal } = options;
  const config = model.config;
  const batchSize = options.batchSize ?? 2;
  const microBatch = Math.min(batchSize, options.microBatch ?? batchSize);
  if (!Number.isInteger(microBatch) || microBatch < 1) throw new FedSegError(`microBatch must be a positive integer, got ${options.microBatch}`, { field: 'microBatch' });
  const patch = options.patch ?? config.inputShape;
  const rng = new SeededRandom(options.seed ?? 0);
  const validationSeed = rng.seed();
  const data = options.data;
  const split: { train: CaseStore | readonly TrainingCase[]; validation?: CaseStore | readonly TrainingCase[] } =
    Array.isArray(data) || data instanceof CaseStore ? { train: data as CaseStore | readonly TrainingCase[] } : (data as { train: CaseStore });
  const train = asStore(split.train);
  const validation = asStore(split.validation);
  if (config.numClasses !== 4) throw new FedSegError(`training needs a 4-class model, config has ${config.numClasses}`, { field: 'numClasses' });
  if (train.size === 0) throw new FedSegError('no training cases', { field: 'data' });
  if (!Number.isInteger(epochs) || epochs < 1) throw new FedSegError(`epochs must be a positive integer, got ${epochs}`, { field: 'epochs' });
  const factor = 2 ** (config.depth - 1);
  if (patch.some((p) => p % factor !== 0)) {
    throw new FedSegError(`patch ${patch.join('x')} must be divisible by 2^(depth-1) = ${factor}`, { field: 'patch' });
  }
  const sampling: PatchSampling = { patch, tumourBias: options.tumourBias ?? 0.67, augmentation: options.augmentation ?? DEFAULT_AUGMENTATION };
  const patchesPerCase = options.patchesPerCase ?? 1;
  const stepsPerEpoch = Math.ceil((train.size * patchesPerCase) / batchSize);
  const totalSteps = stepsPerEpoch * epochs;

  const optimizer = tf.train.adam(options.learningRate ?? 1e-4, 0.9, 0.999, 1e-7);
  let anchor: ProximalAnchor | undefined;
  if (options.proximal && options.proximal.mu > 0) anchor = proximalAnchor(options.proximal.mu, options.proximal.globalWeights);
  const started = performance.now();
  let stepsDone = 0;
  let lastLoss = NaN;
  let lastValidation: ValidationResult | undefined;
  onProgress?.({ type: 'start', epochs, stepsPerEpoch, trainCases: train.size, validationCases: validation.size, batchSize, patch, backend: describeBackend() });

  const step = async (patches: Patch[]): Promise<number> => {
    signal?.throwIfAborted();
    let cost: tf.Scalar;
    // One draw per step whatever the micro-batching, so case order and patches stay the same.
    const dropoutSeed = rng.seed();
    if (patches.length <= microBatch) {
      const { x, y } = stack(patches, patch, config.inChannels);
      cost = optimizer.minimize(() => {
        const loss = segmentationLoss(y, model.logits(x, { training: true, seed: dropoutSeed }), options.loss);
        return anchor ? tf.add(loss, proximalTerm(model.variables, anchor)) : loss;
      }, true, model.variables)!;
      x.dispose();
      y.dispose();
    } else {
      const parts: MicroBatch[] = [];
      for (let i = 0; i < patches.length; i += microBatch) parts.push({ ...stack(patches.slice(i, i + microBatch), patch, config.inChannels), dropoutSeed: (dropoutSeed + i) >>> 0 });
      const { loss, grads } = microBatchGradients(model, parts, options.loss, anchor);
      optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      for (const t of [...Object.values(grads), ...parts.flatMap((p) => [p.x, p.y])]) t.dispose();
      cost = loss;
    }
    const value = (await cost.data())[0];
    cost.dispose();
    if (!Number.isFinite(value)) throw new FedSegError(`training diverged: loss is ${value} at step ${stepsDone + 1}; lower the learning rate`, { field: 'learningRate' });
    stepsDone++;
    await yieldToEventLoop();
    return value;
  };

  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const epochStart = performance.now();
      let sum = 0;
      let count = 0;
      const queue: Patch[] = [];
      const runStep = async (patches: Patch[]) => {
        const loss = await step(patches);
        sum += loss;
        count++;
        const elapsed = (performance.now() - started) / 1000;
        onProgress?.({
          type: 'step', epoch, epochs, step: count, stepsPerEpoch, loss, epochLoss: sum / count,
          elapsedSeconds: elapsed, etaSeconds: (elapsed / stepsDone) * (totalSteps - stepsDone),
        });
      };
      for await (const item of train.pass(rng)) {
        checkPatchFits(item, patch);
        for (let k = 0; k < patchesPerCase; k++) queue.push(samplePatch(item, sampling, rng));
        while (queue.length >= batchSize) await runStep(queue.splice(0, batchSize));
      }
      if (queue.length > 0) await runStep(queue.splice(0));
      lastLoss = sum / count;
      signal?.throwIfAborted();
      lastValidation = validation.size > 0 ? await validate(model, validation, patch, microBatch, validationSeed, options.loss) : undefined;
      let checkpoint: string | undefined;
      if (options.checkpointPath) {
        checkpoint = options.checkpointPath;
        await saveModelFile(checkpoint, config, await model.getWeights(), { ...options.checkpointMeta, epoch, loss: lastLoss });
      }
      onProgress?.({ type: 'epoch', epoch, epochs, loss: lastLoss, validation: lastValidation, seconds: (performance.now() - epochStart) / 1000, checkpoint });
    }
  } finally {
    optimizer.dispose();
    if (anchor) disposeProximal(anchor);
  }
  return {
    weights: await model.getWeights(),
    numCases: train.size,
    metrics: { loss: lastLoss, validation: lastValidation, epochs, steps: stepsDone, seconds: (performance.now() - started) / 1000 },
  };
}

/**
 * Loss and region Dice on one tumour-centred patch per validation case; the same patches every
 * epoch (fixed seed), so epochs are comparable.
 */
export async function validate(
  model: SegmentationModel, cases: CaseStore, patch: Shape3, batchSize: number, seed: number, lossOptions?: LossOptions,
): Promise<ValidationResult> {
  const rng = new SeededRandom(seed);
  const dice = new RegionDiceAccumulator();
  let lossSum = 0;
  let samples = 0;
  let pending: Patch[] = [];
  const flush = async () => {
    const { x, y } = stack(pending, patch, model.config.inChannels);
    const [loss, argmax] = tf.tidy(() => {
      const logits = model.logits(x, { training: false });
      return [segmentationLoss(y, logits, lossOptions), tf.argMax(logits, -1)];
    });
    lossSum += (await loss.data())[0] * pending.length;
    samples += pending.length;
    const predicted = await argmax.data();
    const voxels = patch[0] * patch[1] * patch[2];
    pending.forEach((p, i) => dice.add(predicted.subarray(i * voxels, (i + 1) * voxels), p.classes));
    for (const t of [x, y, loss, argmax]) t.dispose();
    pending = [];
  };
  for await (const item of cases.pass(new SeededRandom(seed))) {
    checkPatchFits(item, patch);
    pending.push(extractPatch(item, samplePatchOrigin(item, { patch, tumourBias: 1, augmentation: NO_AUGMENTATION }, rng), patch));
    if (pending.length >= batchSize) await flush();
  }
  if (pending.length > 0) await flush();
  return { loss: lossSum / samples, dice: dice.result() };
}
