/**
 * The demo site's LocalTrainer (site/runtime.ts's interface): trains with core/train's trainLocal
 * on the site's training cases and evaluates a global model on the site's held-out cases with the
 * BraTS metrics on the full 240 x 240 x 155 grid. Cases are preprocessed once (SPEC section 3 crop)
 * and shrunk by `factor` (the demo's reduced input size), then kept in memory across rounds.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { discoverDataset, type BratsCaseFiles } from '../core/brats/index.js';
import { FedSegError } from '../core/errors.js';
import { computeCaseMetrics, readLabelVolume, REGIONS, type LabelVolume } from '../core/metrics/index.js';
import type { ModelConfig } from '../core/model/config.js';
import { SegmentationModel } from '../core/model/network.js';
import { averagePool, cropShape, DEFAULT_CROP, PreprocessedDataset, preprocessConfig, uncropClassesToLabels, type PreprocessedCase } from '../core/preprocess/index.js';
import type { CaseTensor } from '../core/preprocess/layout.js';
import { tf } from '../core/tf/backend.js';
import type { TrainingCase } from '../core/train/data.js';
import { trainLocal } from '../core/train/trainer.js';
import type { NamedTensor } from '../core/weights/types.js';
import type { LocalTrainer } from '../site/runtime.js';
import { downsampleClasses, upsampleArgmax } from './resample.js';

export interface HeldOutCase {
  caseId: string;
  /** Downsampled model input. */
  image: CaseTensor;
  crop: PreprocessedCase['crop'];
  sourceDims: [number, number, number];
  /** Ground truth on the original grid. */
  truth: LabelVolume;
}

export interface DemoCases { train: TrainingCase[]; heldOut: HeldOutCase[] }

/** Loads and shrinks a site's split; training cases go through the 1 % tumour filter, held-out ones do not. */
export async function loadDemoCases(trainDir: string, heldOutDir: string, factor: number): Promise<DemoCases> {
  return { train: await loadTrainCases(trainDir, factor), heldOut: await loadHeldOutCases(heldOutDir, factor) };
}

export async function loadTrainCases(dir: string, factor: number): Promise<TrainingCase[]> {
  const files = (await discoverDataset(dir)).cases;
  const train: TrainingCase[] = [];
  for await (const item of new PreprocessedDataset(files, preprocessConfig({}), { tumourFilter: true, requireMask: true, onError: 'throw' })) {
    train.push({ caseId: item.caseId, image: averagePool(item.image, factor), classes: downsampleClasses(item.classes!, factor) });
  }
  if (train.length === 0) throw new FedSegError(`no training case passed the tumour filter among ${files.length}`, { file: dir });
  return train;
}

export async function loadHeldOutCases(dir: string, factor: number): Promise<HeldOutCase[]> {
  const files = (await discoverDataset(dir)).cases;
  const byId = new Map<string, BratsCaseFiles>(files.map((f) => [f.caseId, f]));
  const heldOut: HeldOutCase[] = [];
  for await (const item of new PreprocessedDataset(files, preprocessConfig({}), { tumourFilter: false, requireMask: true, onError: 'throw' })) {
    const mask = byId.get(item.caseId)?.mask;
    if (!mask) throw new FedSegError('held-out case has no mask', { caseId: item.caseId, file: dir });
    heldOut.push({ caseId: item.caseId, image: averagePool(item.image, factor), crop: item.crop, sourceDims: item.sourceDims, truth: await readLabelVolume(mask) });
  }
  return heldOut;
}

/** Predicted BraTS labels (0/1/2/4) of a held-out case on its original grid. */
export function predictFullGrid(model: SegmentationModel, item: Pick<HeldOutCase, 'image' | 'crop' | 'sourceDims'>, factor: number): Uint8Array {
  const [ni, nj, nk, nc] = item.image.shape;
  const probs = tf.tidy(() => model.predict(tf.tensor5d(item.image.data, [1, ni, nj, nk, nc])));
  const data = probs.dataSync() as Float32Array;
  probs.dispose();
  const classes = upsampleArgmax(data, [ni, nj, nk], model.config.numClasses, factor);
  return uncropClassesToLabels(classes, item.crop, item.sourceDims);
}

/**
 * Mean Dice and HD95 per region over the held-out cases, named as the federation reports them.
 * Yields to the event loop between cases so the site keeps answering heartbeats.
 */
export async function evaluateCases(model: SegmentationModel, cases: readonly HeldOutCase[], factor: number): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  for (const item of cases) {
    await yieldToEventLoop();
    const pred = predictFullGrid(model, item, factor);
    await yieldToEventLoop();
    const metrics = computeCaseMetrics({ data: pred, dims: item.truth.dims, spacing: item.truth.spacing, source: `prediction for ${item.caseId}` }, item.truth);
    for (const region of REGIONS) {
      sums[`dice_${region}`] = (sums[`dice_${region}`] ?? 0) + metrics[region].dice;
      sums[`hd95_${region}`] = (sums[`hd95_${region}`] ?? 0) + metrics[region].hd95;
    }
  }
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(cases.length, 1)]));
}

export class DownsampledSiteTrainer implements LocalTrainer {
  private cases: Promise<DemoCases> | null = null;

  constructor(private readonly opts: { trainDir: string; heldOutDir: string; factor: number }) {}

  private load(): Promise<DemoCases> {
    this.cases ??= loadDemoCases(this.opts.trainDir, this.opts.heldOutDir, this.opts.factor);
    return this.cases;
  }

  async caseCounts() {
    const { train, heldOut } = await this.load();
    return { train: train.length, validation: heldOut.length };
  }

  async train(args: Parameters<LocalTrainer['train']>[0]) {
    const { train } = await this.load();
    const model = this.model(args.config, args.weights);
    try {
      const { instructions } = args;
      const result = await trainLocal({
        model, data: train, epochs: instructions.epochs, batchSize: instructions.batchSize, learningRate: instructions.learningRate,
        seed: instructions.seed, patch: [...model.config.inputShape], signal: args.signal,
        proximal: instructions.mu > 0 ? { mu: instructions.mu, globalWeights: args.weights } : undefined,
        onProgress: (e) => {
          if (e.type === 'epoch') args.onProgress({ epoch: e.epoch, epochs: e.epochs, loss: e.loss });
        },
      });
      return { weights: result.weights, numCases: result.numCases, metrics: { loss: result.metrics.loss, steps: result.metrics.steps } };
    } finally {
      model.dispose();
    }
  }

  async evaluate(args: { config: ModelConfig; weights: NamedTensor[] }) {
    const { heldOut } = await this.load();
    const model = this.model(args.config, args.weights);
    try {
      return { numCases: heldOut.length, metrics: await evaluateCases(model, heldOut, this.opts.factor) };
    } finally {
      model.dispose();
    }
  }

  private model(config: ModelConfig, weights: readonly NamedTensor[]): SegmentationModel {
    const expected = cropShape(DEFAULT_CROP)[0] / this.opts.factor;
    if (config.inputShape.some((n) => n !== expected)) {
      throw new FedSegError(`the federation's model window ${config.inputShape.join('x')} does not match this site's ${expected}^3 downsampled crops`, { field: 'inputShape' });
    }
    return new SegmentationModel(config, weights);
  }
}
