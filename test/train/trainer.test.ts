import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { makeModelConfig, type ModelConfig } from '../../core/model/config.js';
import { createModel } from '../../core/model/network.js';
import { generateMiniCase } from '../../core/synth/index.js';
import { initBackend } from '../../core/tf/backend.js';
import type { TrainingCase } from '../../core/train/data.js';
import { NO_AUGMENTATION } from '../../core/train/patches.js';
import { trainLocal, type TrainProgress } from '../../core/train/trainer.js';
import { loadModelFile } from '../../core/weights/index.js';

before(async () => {
  await initBackend('cpu');
});

async function miniCase(caseIndex = 1, size = 16): Promise<TrainingCase> {
  const mini = await generateMiniCase({ size, site: 1, caseIndex });
  return { caseId: mini.caseId, image: mini.image, classes: mini.classes! };
}

const tiny = (overrides: Partial<ModelConfig> = {}) =>
  makeModelConfig({ baseFilters: 8, depth: 3, inputShape: [16, 16, 16], dropout: [0, 0, 0], ...overrides });

// The attention gates slow early learning on the tiniest structures, so that model gets a 24^3 case
// (classes of 65/820/117 voxels instead of 18/247/35) and a few more steps.
const OVERFIT = {
  unet: { size: 16, epochs: 90 },
  'attention-unet': { size: 24, epochs: 100 },
} as const;

for (const arch of ['unet', 'attention-unet'] as const) {
  test(`a tiny ${arch} overfits one synthetic case: the loss falls by 90 %`, async () => {
    const { size, epochs } = OVERFIT[arch];
    const model = createModel(tiny({ arch, inputShape: [size, size, size] }), 1);
    const losses: number[] = [];
    await trainLocal({
      model, data: [await miniCase(1, size)], epochs, batchSize: 1, learningRate: arch === 'unet' ? 3e-3 : 2e-3, augmentation: NO_AUGMENTATION, seed: 1,
      onProgress: (e) => {
        if (e.type === 'epoch') losses.push(e.loss);
      },
    });
    const first = losses[0];
    const lastFive = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    assert.ok(lastFive <= 0.1 * first, `loss ${first.toFixed(3)} -> ${lastFive.toFixed(3)} (mean of the last 5 epochs)`);
    model.dispose();
  });
}

test('same seed -> bit-identical weights; progress reports steps, epochs and an ETA', async () => {
  const cases = [await miniCase(0), await miniCase(1), await miniCase(2)];
  const run = async () => {
    const model = createModel(tiny({ baseFilters: 4, dropout: [0.1, 0.1, 0.3] }), 5);
    const events: TrainProgress[] = [];
    const result = await trainLocal({ model, data: { train: cases.slice(0, 2), validation: cases.slice(2) }, epochs: 2, batchSize: 2, learningRate: 1e-3, seed: 7, onProgress: (e) => events.push(e) });
    model.dispose();
    return { result, events };
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a.result.weights, b.result.weights);
  assert.equal(a.result.numCases, 2);
  assert.equal(a.result.metrics.steps, 2);
  assert.deepEqual(a.events.map((e) => e.type), ['start', 'step', 'epoch', 'step', 'epoch']);
  const step = a.events[1] as Extract<TrainProgress, { type: 'step' }>;
  assert.equal(step.stepsPerEpoch, 1);
  assert.ok(step.etaSeconds > 0 && Number.isFinite(step.loss));
  const epoch = a.events[4] as Extract<TrainProgress, { type: 'epoch' }>;
  assert.ok(epoch.validation && epoch.validation.dice.WT >= 0 && epoch.validation.dice.WT <= 1);
  assert.deepEqual(a.result.metrics.validation, epoch.validation);
});

test('FedProx keeps the local model closer to the global weights', async () => {
  const data = [await miniCase()];
  const distance = async (mu: number) => {
    const model = createModel(tiny({ baseFilters: 4 }), 3);
    const global = await model.getWeights();
    const { weights } = await trainLocal({ model, data, epochs: 4, batchSize: 1, learningRate: 1e-2, seed: 2, proximal: { mu, globalWeights: global } });
    model.dispose();
    return weights.reduce((sum, w, i) => sum + w.data.reduce((s, v, j) => s + (v - global[i].data[j]) ** 2, 0), 0);
  };
  const free = await distance(0);
  const anchored = await distance(1000);
  assert.ok(anchored < free, `||w - w_global||^2: mu=1000 ${anchored} vs mu=0 ${free}`);
});

test('aborting stops training with the signal reason and writes a checkpoint per finished epoch', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedseg-train-'));
  try {
    const model = createModel(tiny({ baseFilters: 4 }), 1);
    const controller = new AbortController();
    const checkpointPath = join(dir, 'checkpoint.fsm');
    await assert.rejects(
      trainLocal({
        model, data: [await miniCase()], epochs: 10, batchSize: 1, seed: 1, signal: controller.signal, checkpointPath,
        onProgress: (e) => {
          if (e.type === 'epoch' && e.epoch === 2) controller.abort(new Error('stopped by the site admin'));
        },
      }),
      /stopped by the site admin/,
    );
    const checkpoint = await loadModelFile(checkpointPath, { expectConfig: model.config });
    assert.equal(checkpoint.meta.epoch, 2);
    assert.deepEqual(await readdir(dir), ['checkpoint.fsm']);
    model.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bad training settings are clear errors', async () => {
  const model = createModel(tiny({ baseFilters: 4 }), 1);
  const data = [await miniCase()];
  await assert.rejects(trainLocal({ model, data, epochs: 1, patch: [32, 32, 32] }), /patch 32x32x32 is larger than the preprocessed case \(16x16x16\)/);
  await assert.rejects(trainLocal({ model, data, epochs: 1, patch: [6, 8, 8] }), /divisible by 2\^\(depth-1\) = 4/);
  await assert.rejects(trainLocal({ model, data: [], epochs: 1 }), /no training cases/);
  await assert.rejects(trainLocal({ model, data, epochs: 0 }), /epochs must be a positive integer/);
  model.dispose();
});
