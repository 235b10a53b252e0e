/**
 * Model benchmark on the active backend: ms per training step and effective GFLOP/s for the U-Net at
 * 64^3 input, base filters 16, depth 3 (levels 16, 32, 64); ms for one full-case inference
 * (preprocessing + sliding-window over the 128^3 crop + mapping back to 240x240x155); peak memory.
 */
import { predictVolume } from '../core/inference/sliding-window.js';
import { makeModelConfig } from '../core/model/config.js';
import { createModel, forwardMacs } from '../core/model/network.js';
import { parameterCount } from '../core/model/parameters.js';
import { preprocessConfig, preprocessCase, uncropPrediction } from '../core/preprocess/index.js';
import { generateCase, siteProfile } from '../core/synth/index.js';
import { initBackend } from '../core/tf/backend.js';
import { trainLocal } from '../core/train/trainer.js';

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

export async function runModelBench(options: { quick?: boolean } = {}) {
  const quick = options.quick ?? false;
  const info = await initBackend();
  const config = makeModelConfig({ baseFilters: 16, depth: 3, inputShape: [64, 64, 64] });
  const model = createModel(config, 1);
  const batchSize = quick ? 1 : 2;
  const timedSteps = quick ? 1 : 3;

  // A synthetic full-size case: its crop feeds both the training steps and the inference.
  const raw = generateCase(1, siteProfile(1, 1), 0);
  const preprocess = preprocessConfig();
  const inferenceStart = performance.now();
  const item = await preprocessCase({
    caseId: 'bench', loadModality: (m) => ({ dims: raw.dims, data: raw.modalities[m], affine: raw.affine }),
    loadMask: () => ({ dims: raw.dims, data: raw.seg, affine: raw.affine }),
  }, preprocess);
  const preprocessMs = performance.now() - inferenceStart;
  const cases = [{ caseId: 'bench', image: item.image, classes: item.classes! }];

  // One warm-up step (kernel set-up, JIT), then timed steps.
  const stepMs: number[] = [];
  let last = performance.now();
  await trainLocal({
    model, data: cases, epochs: timedSteps + 1, batchSize, patchesPerCase: batchSize, learningRate: 1e-4, seed: 1,
    onProgress: (e) => {
      if (e.type !== 'step') return;
      const now = performance.now();
      if (e.epoch > 1) stepMs.push(now - last);
      last = now;
    },
  });
  const msPerStep = Math.min(...stepMs);
  // Training = forward + input gradient + weight gradient, about 3x the forward FLOPs (2 per MAC).
  const gflopPerStep = (3 * 2 * forwardMacs(config) * batchSize) / 1e9;

  const overlap = quick ? 0 : 0.5;
  const predictStart = performance.now();
  const classes = await predictVolume(model, item.image, { overlap });
  const predictMs = performance.now() - predictStart;
  uncropPrediction(classes, item);
  const fullCaseMs = preprocessMs + predictMs;
  model.dispose();

  const result = {
    backend: info.detail,
    model: { arch: config.arch, inputShape: config.inputShape, baseFilters: 16, depth: 3, parameters: parameterCount(config) },
    training: { batchSize, msPerStep: round(msPerStep), gflopPerStep: round(gflopPerStep, 2), effectiveGflops: round(gflopPerStep / (msPerStep / 1000), 2), timedSteps },
    inference: { window: config.inputShape, overlap, windows: overlap === 0 ? 8 : 27, preprocessMs: round(preprocessMs), predictMs: round(predictMs), fullCaseMs: round(fullCaseMs) },
    // The kernel's high-water mark: covers the wasm heap and peaks inside synchronous kernels.
    peakMemory: { maxRssMiB: round(process.resourceUsage().maxRSS / 1024) },
  };
  const table = [
    `backend: ${result.backend}`,
    `U-Net 64^3, base 16, depth 3 (${result.model.parameters.toLocaleString('en')} parameters)`,
    `  training step (batch ${batchSize})     ${result.training.msPerStep} ms   ${result.training.effectiveGflops} GFLOP/s effective (${result.training.gflopPerStep} GFLOP/step)`,
    `  full-case inference              ${result.inference.fullCaseMs} ms   (preprocess in memory ${result.inference.preprocessMs} ms + ${result.inference.windows} windows of 64^3, overlap ${overlap}: ${result.inference.predictMs} ms)`,
    `  peak memory (max RSS, process)   ${result.peakMemory.maxRssMiB} MiB`,
  ].join('\n');
  return { table, json: result };
}
