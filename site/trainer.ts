/**
 * The site's LocalTrainer on BraTS case folders: preprocesses the site's approved cases once
 * (kept in memory across rounds), trains each round with core/train's trainLocal (FedProx term when
 * the server sends mu > 0) and evaluates global models on the local validation cases. Only counts
 * and aggregate metrics come out of here; case ids and voxels stay inside.
 */
import { createModel } from '../core/model/network.js';
import { preprocessConfig, type PreprocessConfig } from '../core/preprocess/index.js';
import { describeBackend, initBackend, type BackendPreference } from '../core/tf/backend.js';
import { CaseStore, prepareTrainingData, type PreparedData } from '../core/train/data.js';
import { trainLocal, validate } from '../core/train/trainer.js';
import type { LocalTrainer } from './runtime.js';

export interface DataDirTrainerOptions {
  /** Folders of training cases (BraTS layout). */
  trainDirs: string[];
  /** Folders of held-out validation cases; when omitted, a seeded fraction of the training folders is held out. */
  validationDirs?: string[];
  validationFraction?: number;
  preprocess?: Partial<PreprocessConfig>;
  /** Patches drawn per training case per epoch (default 1). */
  patchesPerCase?: number;
  backend?: BackendPreference;
  /** In-memory cache budget for preprocessed cases (bytes). */
  cacheBytes?: number;
  seed?: number;
}

export function createDataDirTrainer(opts: DataDirTrainerOptions): LocalTrainer {
  let prepared: Promise<{ train: CaseStore; validation: CaseStore }> | null = null;
  const data = () => (prepared ??= (async () => {
    await initBackend(opts.backend);
    const config = preprocessConfig(opts.preprocess ?? {});
    const options = { seed: opts.seed ?? 0, cacheBytes: opts.cacheBytes };
    if (opts.validationDirs && opts.validationDirs.length > 0) {
      const train: PreparedData = await prepareTrainingData(opts.trainDirs, config, { ...options, validationFraction: 0 });
      const held: PreparedData = await prepareTrainingData(opts.validationDirs, config, { ...options, validationFraction: 0 });
      return { train: train.train, validation: held.train };
    }
    const split = await prepareTrainingData(opts.trainDirs, config, { ...options, validationFraction: opts.validationFraction });
    return { train: split.train, validation: split.validation };
  })());

  return {
    backend: describeBackend,

    async caseCounts() {
      const { train, validation } = await data();
      return { train: train.size, validation: validation.size };
    },

    async train({ config, weights, instructions, signal, onProgress }) {
      const { train, validation } = await data();
      const model = createModel(config, instructions.seed);
      try {
        model.setWeights(weights);
        const result = await trainLocal({
          model, data: { train, validation }, epochs: instructions.epochs, batchSize: instructions.batchSize,
          learningRate: instructions.learningRate, seed: instructions.seed, patchesPerCase: opts.patchesPerCase, signal,
          proximal: instructions.mu > 0 ? { mu: instructions.mu, globalWeights: weights } : undefined,
          onProgress: (p) => {
            if (p.type === 'step') onProgress({ epoch: p.epoch, epochs: p.epochs, step: p.step, steps: p.stepsPerEpoch, loss: p.loss, etaSeconds: p.etaSeconds });
            else if (p.type === 'epoch') onProgress({ epoch: p.epoch, epochs: p.epochs, loss: p.loss });
          },
        });
        const metrics: Record<string, number> = { loss: result.metrics.loss, steps: result.metrics.steps, seconds: result.metrics.seconds };
        const v = result.metrics.validation;
        if (v) Object.assign(metrics, { val_loss: v.loss, val_dice_ET: v.dice.ET, val_dice_TC: v.dice.TC, val_dice_WT: v.dice.WT });
        return { weights: result.weights, numCases: result.numCases, metrics };
      } finally {
        model.dispose();
      }
    },

    async evaluate({ config, weights }) {
      const { validation } = await data();
      if (validation.size === 0) return { numCases: 0, metrics: {} as Record<string, number> };
      const model = createModel(config, 0);
      try {
        model.setWeights(weights);
        const r = await validate(model, validation, config.inputShape, 2, opts.seed ?? 0);
        const metrics: Record<string, number> = { loss: r.loss, dice_ET: r.dice.ET, dice_TC: r.dice.TC, dice_WT: r.dice.WT };
        return { numCases: validation.size, metrics };
      } finally {
        model.dispose();
      }
    },
  };
}
