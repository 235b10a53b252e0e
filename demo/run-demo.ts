/**
 * `fedseg demo`: five synthetic hospitals, one aggregation server, separate site processes on
 * loopback, N rounds of FedAvg, then report.json + report.html (and optional baselines).
 * Everything it makes lives under the output folder.
 */
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { makeModelConfig, type ModelConfig } from '../core/model/config.js';
import { SegmentationModel } from '../core/model/network.js';
import { DemoReportSchema, formatRoundTable, renderReportHtml, type BaselineResults, type DemoReport, type RoundEntry } from '../core/report/index.js';
import { describeBackend, initBackend } from '../core/tf/backend.js';
import { loadModelFile } from '../core/weights/index.js';
import { runBaselines } from './baselines.js';
import { ensureDemoData, writeAtomic } from './data.js';
import { loadHeldOutCases, predictFullGrid } from './downsampled-trainer.js';
import { runFederation } from './federation-run.js';
import type { DemoOptions } from './options.js';
import { renderPredictionSlice } from './slice-image.js';

/** Side of the preprocessed crop (SPEC section 3) that the reduced input size divides. */
const CROP_SIZE = 128;

export interface DemoOutput { report: DemoReport; reportJson: string; reportHtml: string }

export async function runDemo(options: DemoOptions, log: (line: string) => void, onRound: (entry: RoundEntry, table: string) => void): Promise<DemoOutput> {
  const started = Date.now();
  const loadAverageStart = loadavg()[0];
  await mkdir(options.outDir, { recursive: true });
  const factor = CROP_SIZE / options.inputSize;
  const modelConfig: ModelConfig = makeModelConfig({
    arch: options.model, baseFilters: options.baseFilters, depth: options.depth,
    inputShape: [options.inputSize, options.inputSize, options.inputSize],
  });
  const { sites } = await ensureDemoData({
    dataDir: join(options.outDir, 'data'), sites: options.sites, casesPerSite: options.casesPerSite, heldOutPerSite: options.heldOut, seed: options.seed,
  }, log);
  const backend = await initBackend();
  const reducedSize = `Reduced size for a ${options.sites}-site federation on a CPU-only machine: each case's 128^3 crop (SPEC section 3) `
    + `is downsampled x${factor} to ${options.inputSize}^3 (${factor} mm voxels; image by block mean, mask by block majority), `
    + `${options.model} with base filters ${options.baseFilters} and depth ${options.depth}, batch ${options.batchSize}, `
    + `Adam lr ${options.learningRate} (the original 1e-4 needs far more steps than a few-minute demo has), `
    + `${options.localEpochs} local epoch(s) per round. Predictions are upsampled (trilinear on probabilities) back to the crop `
    + `and evaluated on the full 240x240x155 grid (Dice per region, SPEC section 4).`;
  log(reducedSize);

  const rounds: RoundEntry[] = [];
  const federation = await runFederation({
    outDir: options.outDir,
    sites,
    federation: {
      model: modelConfig, rounds: options.rounds, localEpochs: options.localEpochs, learningRate: options.learningRate, batchSize: options.batchSize,
      strategy: { name: 'fedavg' }, minSites: Math.max(1, Math.ceil(sites.length / 2)), approvalDeadlineS: 120, trainingDeadlineS: 900,
      evaluationDeadlineS: 300, retryDelayS: 1, seed: options.seed % 2 ** 31,
      // Sites evaluate and train on a CPU shared by every process here: be patient before calling one dead.
      heartbeatS: 60,
    },
    worker: { factor },
    log,
    onRound: (entry) => {
      rounds.push(entry);
      rounds.sort((a, b) => a.round - b.round);
      onRound(entry, formatRoundTable(rounds, sites.length));
    },
  });

  let slice: { png: Buffer; caption: string } | undefined;
  if (federation.finalModelFile) {
    try {
      slice = await predictionPicture(federation.finalModelFile, sites[0].heldOutDir, factor);
    } catch (err) {
      log(`could not render the prediction slice: ${errorMessage(err)}`);
    }
  }
  let baselines: BaselineResults | undefined;
  if (options.baselines) {
    baselines = await runBaselines({ sites, modelConfig, factor, epochs: options.rounds * options.localEpochs, learningRate: options.learningRate, batchSize: options.batchSize, seed: options.seed, log });
  }
  const report = DemoReportSchema.parse({
    createdAt: new Date().toISOString(),
    outDir: options.outDir,
    backend: backend.detail || describeBackend(),
    settings: {
      sites: sites.map((s) => s.name), rounds: options.rounds, model: options.model, casesPerSite: options.casesPerSite,
      trainCasesPerSite: Object.fromEntries(sites.map((s) => [s.name, s.train.length])),
      heldOutCasesPerSite: Object.fromEntries(sites.map((s) => [s.name, s.heldOut.length])),
      reducedSize, localEpochs: options.localEpochs, seed: options.seed,
    },
    rounds: federation.rounds,
    baselines,
    totalSeconds: (Date.now() - started) / 1000,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadAverageStart, loadAverageEnd: loadavg()[0] },
    sliceCaption: slice?.caption,
  });
  const reportJson = join(options.outDir, 'report.json');
  const reportHtml = join(options.outDir, 'report.html');
  await writeAtomic(reportJson, `${JSON.stringify(report, null, 2)}\n`);
  await writeAtomic(reportHtml, renderReportHtml(report, slice?.png));
  return { report, reportJson, reportHtml };
}

async function predictionPicture(modelFile: string, heldOutDir: string, factor: number) {
  const [item] = await loadHeldOutCases(heldOutDir, factor);
  const { config, tensors } = await loadModelFile(modelFile);
  const model = new SegmentationModel(config, tensors);
  try {
    return await renderPredictionSlice(heldOutDir, item, predictFullGrid(model, item, factor));
  } finally {
    model.dispose();
  }
}
