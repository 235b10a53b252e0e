/**
 * Full-case inference with the default network (U-Net 16..256, 5 levels, 3 channels, 128^3 windows) on
 * a synthetic 240 x 240 x 155 BraTS case (four modality volumes; the default preprocessing reads FLAIR,
 * T1ce and T2):
 *   - "case": what `fedseg segment` and the viewer's Predict do: preprocess, crop to 128^3, sliding-window
 *     inference over the crop (one 128^3 window), labels back on the 240 x 240 x 155 grid. Timed cold
 *     (first inference in the process: kernel set-up, heap growth) and warm, then the warm forward is
 *     profiled kernel by kernel;
 *   - "whole grid" (full mode): the same preprocessing without the crop, 128^3 windows over all of
 *     240 x 240 x 155 at the default overlap (0.5): 3 x 3 x 2 = 18 windows.
 * Reports windows, seconds per window, totals, process CPU seconds and peak RSS after each part.
 */
import { predictVolume } from '../core/inference/sliding-window.js';
import { makeModelConfig } from '../core/model/config.js';
import { createModel, type SegmentationModel } from '../core/model/network.js';
import { preprocessCase, preprocessConfig, uncropPrediction, type PreprocessConfig } from '../core/preprocess/index.js';
import { generateCase, siteProfile } from '../core/synth/index.js';
import { initBackend, tf } from '../core/tf/backend.js';
import { kernelShares, round } from './kernel-profile.js';

interface InferenceRun {
  part: string;
  volume: string;
  windows: number;
  preprocessSeconds: number;
  predictSeconds: number;
  secondsPerWindow: number;
  totalSeconds: number;
  cpuSeconds: number;
  /** Minor page faults: first touches of new memory, costly on some virtual machines. */
  pageFaults: number;
  peakRssMiB: number;
}

const peakRssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

export async function runInferBench(options: { quick?: boolean } = {}) {
  const backend = await initBackend();
  const config = makeModelConfig();
  const model = createModel(config, 1);
  const raw = generateCase(1, siteProfile(1, 1), 0);
  const fullGrid = preprocessConfig({ crop: { i: [0, raw.dims[0]], j: [0, raw.dims[1]], k: [0, raw.dims[2]] } });
  const runs: InferenceRun[] = [];
  runs.push(await timeCase(model, raw, preprocessConfig(), 'case, cold'));
  runs.push(await timeCase(model, raw, preprocessConfig(), 'case, warm'));
  const profile = await profileForward(model);
  if (!options.quick) runs.push(await timeCase(model, raw, fullGrid, 'whole grid'));
  model.dispose();

  const table = [
    `full-case inference, default U-Net (${config.inputShape.join('x')} windows, overlap 0.5) on ${backend.detail}`,
    'part          volume           windows  s/window  preprocess s  predict s  total s  CPU s  page faults  peak RSS MiB',
    ...runs.map((r) => `${r.part.padEnd(13)} ${r.volume.padEnd(16)} ${String(r.windows).padStart(7)} ${r.secondsPerWindow.toFixed(2).padStart(9)} `
      + `${r.preprocessSeconds.toFixed(2).padStart(13)} ${r.predictSeconds.toFixed(2).padStart(10)} ${r.totalSeconds.toFixed(2).padStart(8)} `
      + `${r.cpuSeconds.toFixed(2).padStart(6)} ${String(r.pageFaults).padStart(12)} ${String(r.peakRssMiB).padStart(13)}`),
    `one warm ${config.inputShape.join('x')} forward, kernel by kernel (wall ${profile.wallSeconds} s, CPU ${profile.cpuSeconds} s):`,
    ...profile.kernels.slice(0, 10).map((k) => `  ${k.kernel.padEnd(28)} ${String(k.calls).padStart(5)} ${k.seconds.toFixed(2).padStart(7)} s ${(100 * k.share).toFixed(1).padStart(6)} %`),
  ].join('\n');
  return { table, json: { backend: backend.detail, window: config.inputShape, overlap: 0.5, runs, forwardProfile: profile } };
}

/** Preprocess (in memory), sliding-window prediction and the labels back on the source grid. */
async function timeCase(model: SegmentationModel, raw: ReturnType<typeof generateCase>, preprocess: PreprocessConfig, part: string): Promise<InferenceRun> {
  const cpuBefore = process.cpuUsage();
  const faultsBefore = process.resourceUsage().minorPageFault;
  const started = performance.now();
  const item = await preprocessCase({ caseId: 'bench', loadModality: (m) => ({ dims: raw.dims, data: raw.modalities[m], affine: raw.affine }) }, preprocess);
  const preprocessSeconds = (performance.now() - started) / 1000;
  let windows = 0;
  const predictStart = performance.now();
  const classes = await predictVolume(model, item.image, { onProgress: (_, total) => (windows = total) });
  const predictSeconds = (performance.now() - predictStart) / 1000;
  uncropPrediction(classes, item);
  const totalSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    part, volume: item.image.shape.join('x'), windows, preprocessSeconds: round(preprocessSeconds), predictSeconds: round(predictSeconds),
    secondsPerWindow: round(predictSeconds / windows), totalSeconds: round(totalSeconds), cpuSeconds: round((cpu.user + cpu.system) / 1e6),
    pageFaults: process.resourceUsage().minorPageFault - faultsBefore, peakRssMiB: peakRssMiB(),
  };
}

/** tf.profile of one forward pass over a window of the model's input shape. */
async function profileForward(model: SegmentationModel) {
  const { inputShape, inChannels } = model.config;
  const x = tf.randomUniform([1, ...inputShape, inChannels], 0, 1, 'float32', 3);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const profile = await tf.profile(() => {
    const y = model.predict(x);
    y.dataSync();
    y.dispose();
  });
  const wallSeconds = round((performance.now() - started) / 1000);
  const cpu = process.cpuUsage(cpuBefore);
  x.dispose();
  const kernels = kernelShares(profile);
  return { wallSeconds, cpuSeconds: round((cpu.user + cpu.system) / 1e6), peakBytes: profile.peakBytes, kernels };
}
