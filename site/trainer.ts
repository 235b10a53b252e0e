/**
 * The site's LocalTrainer on BraTS case folders, the one training path of FedSeg: `fedseg site`,
 * the desktop app, `fedseg demo` and `fedseg experiment` all train and evaluate through it.
 * It preprocesses the site's cases once at full resolution (kept in memory across rounds), reduces
 * them to the federation model's `downsample` when a round asks for it, trains with core/train's
 * trainLocal (FedProx term when the server sends mu > 0), and evaluates global models on the
 * held-out cases with the BraTS metrics on the full original grid. Only counts and aggregate
 * metrics come out of here; case ids and voxels stay inside.
 */
import { FedSegError } from '../core/errors.js';
import { evaluateHeldOut, type EvaluationCase } from '../core/inference/index.js';
import { regionMetricKey, REGIONS } from '../core/metrics/index.js';
import { SeededRandom } from '../core/model/random.js';
import { SegmentationModel } from '../core/model/network.js';
import { preprocessConfig, type PreprocessConfig } from '../core/preprocess/index.js';
import { activeBackend, describeBackend, initBackend, type BackendPreference } from '../core/tf/backend.js';
import { CaseStore, prepareTrainingData } from '../core/train/data.js';
import { wasmMicroBatch } from '../core/train/micro-batches.js';
import { trainLocal } from '../core/train/trainer.js';
import type { MetricKeys } from './outgoing.js';
import type { LocalTrainer } from './runtime.js';

/** What train() and evaluate() below report: aggregate numbers only. */
export const DATA_DIR_TRAINER_METRICS: MetricKeys = {
  update: ['loss', 'steps', 'seconds'],
  evaluation: (['dice', 'hd95'] as const).flatMap((metric) => REGIONS.map((region) => regionMetricKey(metric, region))),
};

export interface DataDirTrainerOptions {
  /** Folders of training cases (BraTS layout). */
  trainDirs: string[];
  /** caseId -> mask file overriding the discovered mask (core/train prepareTrainingData). */
  maskFiles?: ReadonlyMap<string, string>;
  /** Folders of held-out validation cases; when omitted, a seeded fraction of the training folders is held out. */
  validationDirs?: string[];
  validationFraction?: number;
  preprocess?: Partial<PreprocessConfig>;
  /** Patches drawn per training case per epoch (default 1). */
  patchesPerCase?: number;
  backend?: BackendPreference;
  /**
   * Most samples per forward/backward pass; a larger batch from the server runs as exact micro-batches
   * (core/train/micro-batches.ts). Default: the whole batch, or what fits the heap on wasm.
   */
  microBatch?: number;
  /** In-memory cache budget for preprocessed cases (bytes). */
  cacheBytes?: number;
  seed?: number;
}

interface SiteData {
  config: PreprocessConfig;
  train: CaseStore;
  validation: CaseStore;
  /** caseId -> mask file, for scoring validation cases on their original grid. */
  masks: Map<string, string>;
  /** Training cases reduced per model `downsample`, made on first use. */
  reduced: Map<number, CaseStore>;
}

export function createDataDirTrainer(opts: DataDirTrainerOptions): LocalTrainer {
  let prepared: Promise<SiteData> | null = null;
  const data = () => (prepared ??= (async () => {
    await initBackend(opts.backend);
    const config = preprocessConfig(opts.preprocess ?? {});
    const options = { seed: opts.seed ?? 0, cacheBytes: opts.cacheBytes, maskFiles: opts.maskFiles };
    if (opts.validationDirs && opts.validationDirs.length > 0) {
      const train = await prepareTrainingData(opts.trainDirs, config, { ...options, validationFraction: 0 });
      // Held-out cases are scored as they are: no tumour filter, so small tumours count too.
      const held = await prepareTrainingData(opts.validationDirs, config, { ...options, validationFraction: 0, tumourFilter: false });
      return { config, train: train.train, validation: held.train, masks: held.masks, reduced: new Map() };
    }
    const split = await prepareTrainingData(opts.trainDirs, config, { ...options, validationFraction: opts.validationFraction });
    return { config, train: split.train, validation: split.validation, masks: split.masks, reduced: new Map() };
  })());

  return {
    backend: describeBackend,
    metricKeys: DATA_DIR_TRAINER_METRICS,

    async caseCounts() {
      const { train, validation } = await data();
      return { train: train.size, validation: validation.size };
    },

    async train({ config, weights, instructions, signal, onProgress }) {
      const site = await data();
      let train = site.reduced.get(config.downsample);
      if (!train) site.reduced.set(config.downsample, (train = site.train.downsampled(config.downsample)));
      const fits = activeBackend()?.name === 'wasm' ? wasmMicroBatch(config) : undefined;
      if (fits === 0) {
        throw new FedSegError(`the model's ${config.inputShape.join('x')} training step with ${config.baseFilters} base filters needs more than the wasm backend's 4 GB heap; `
          + 'run this site with --backend cpu (no such limit, slower) or tensorflow', { field: 'backend' });
      }
      const microBatch = Math.min(opts.microBatch ?? Infinity, fits ?? Infinity);
      const model = new SegmentationModel(config, weights);
      try {
        const result = await trainLocal({
          model, data: train, epochs: instructions.epochs, batchSize: instructions.batchSize,
          // The batch the server asks for, in passes that fit the wasm heap when it cannot hold it whole.
          microBatch: Number.isFinite(microBatch) ? microBatch : undefined,
          learningRate: instructions.learningRate, seed: instructions.seed, patchesPerCase: opts.patchesPerCase,
          signal,
          proximal: instructions.mu > 0 ? { mu: instructions.mu, globalWeights: weights } : undefined,
          onProgress: (p) => {
            if (p.type === 'step') onProgress({ epoch: p.epoch, epochs: p.epochs, step: p.step, steps: p.stepsPerEpoch, loss: p.loss, etaSeconds: p.etaSeconds });
            else if (p.type === 'epoch') onProgress({ epoch: p.epoch, epochs: p.epochs, loss: p.loss });
          },
        });
        const metrics: Record<string, number> = { loss: result.metrics.loss, steps: result.metrics.steps, seconds: result.metrics.seconds };
        return { weights: result.weights, numCases: result.numCases, metrics };
      } finally {
        model.dispose();
      }
    },

    async evaluate({ config, weights, signal }) {
      const site = await data();
      if (site.validation.size === 0) return { numCases: 0, metrics: {} as Record<string, number> };
      const model = new SegmentationModel(config, weights);
      try {
        return await evaluateHeldOut(model, withMasks(site), site.config.crop, signal);
      } finally {
        model.dispose();
      }
    },
  };
}

async function* withMasks(site: SiteData): AsyncGenerator<EvaluationCase> {
  for await (const item of site.validation.pass(new SeededRandom(0))) {
    const maskFile = site.masks.get(item.caseId);
    if (!maskFile) throw new FedSegError('validation case has no mask file', { caseId: item.caseId });
    yield { caseId: item.caseId, image: item.image, maskFile };
  }
}
