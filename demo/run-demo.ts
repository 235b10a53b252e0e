/**
 * `fedseg demo`: five synthetic hospitals, one aggregation server, separate site processes on
 * loopback, N rounds of FedAvg, then report.json + report.html (and optional baselines).
 * Everything it makes lives under the output folder.
 */
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { discoverDataset } from '../core/brats/index.js';
import { errorMessage, FedSegError } from '../core/errors.js';
import { readLabelVolume } from '../core/metrics/index.js';
import { makeModelConfig, type ModelConfig } from '../core/model/config.js';
import { SegmentationModel } from '../core/model/network.js';
import { DemoReportSchema, formatRoundTable, type ComparisonRow, type SiteDice, renderReportHtml, type BaselineResults, type DemoReport, type RoundEntry } from '../core/report/index.js';
import { noiseMultiplierFor } from '../core/privacy/accountant.js';
import type { PrivacyConfig } from '../core/privacy/config.js';
import { dpLabel, privacyRecord } from '../core/privacy/record.js';
import { halfThreshold } from '../core/privacy/secagg-server.js';
import { describeBackend, initBackend } from '../core/tf/backend.js';
import { loadModelFile } from '../core/weights/index.js';
import { runBaselines } from './baselines.js';
import { writeFileAtomic } from '../core/fs/atomic-write.js';
import { segmentCase } from '../core/inference/index.js';
import { preprocessConfig } from '../core/preprocess/index.js';
import { ensureDemoData } from './data.js';
import { runFederation } from './federation-run.js';
import type { DemoOptions } from './options.js';
import { renderPredictionSlice } from './slice-image.js';

/** Side of the preprocessed crop (SPEC section 3) that the downsampling factor divides. */
const CROP_SIZE = 128;

export interface DemoOutput { report: DemoReport; reportJson: string; reportHtml: string }

export async function runDemo(options: DemoOptions, log: (line: string) => void, onRound: (entry: RoundEntry, table: string) => void): Promise<DemoOutput> {
  const started = Date.now();
  const loadAverageStart = loadavg()[0];
  await mkdir(options.outDir, { recursive: true });
  const factor = options.downsample;
  const window = CROP_SIZE / factor;
  const modelConfig: ModelConfig = makeModelConfig({
    arch: options.model, baseFilters: options.baseFilters, depth: options.depth, downsample: factor, inputShape: [window, window, window],
  });
  const { sites } = await ensureDemoData({
    dataDir: options.dataDir, sites: options.sites, casesPerSite: options.casesPerSite, heldOutPerSite: options.heldOut, seed: options.seed,
  }, log);
  const backend = await initBackend();
  const resolution = factor === 1
    ? `Full resolution: each case's 128^3 crop (SPEC section 3) at 1 mm, `
    : `Reduced size for a ${options.sites}-site federation on a CPU-only machine: the model's downsample option has every site `
      + `see each case's 128^3 crop (SPEC section 3) block-averaged x${factor} to ${window}^3 (${factor} mm voxels; masks by block majority), `;
  const reducedSize = resolution
    + `${options.model} with base filters ${options.baseFilters} and depth ${options.depth}, batch ${options.batchSize}, `
    + `Adam lr ${options.learningRate}${options.learningRate === 1e-4 ? ' (the original project\'s)' : ' (the original 1e-4 needs far more steps than a few-minute demo has)'}, `
    + `${options.localEpochs} local epoch(s) per round, all through the site trainer every hospital runs. `
    + (factor === 1 ? 'Predictions are evaluated' : 'Predictions are upsampled (trilinear on probabilities) back to the crop and evaluated')
    + ` on the full 240x240x155 grid (Dice and HD95 per region, SPEC section 4).`;
  log(reducedSize);

  const privacy = demoPrivacy(options);
  if (privacy) log(`differential privacy: epsilon ${options.dpEpsilon} at delta ${privacy.delta} over ${options.rounds} rounds needs noise multiplier ${privacy.noiseMultiplier.toPrecision(4)} at clip ${privacy.clip}`);
  const rounds: RoundEntry[] = [];
  const federation = await runFederation({
    outDir: options.outDir,
    sites,
    federation: {
      model: modelConfig, rounds: options.rounds, localEpochs: options.localEpochs, learningRate: options.learningRate, batchSize: options.batchSize,
      strategy: { name: 'fedavg' }, minSites: Math.max(1, Math.ceil(sites.length / 2)), approvalDeadlineS: 120,
      ...(options.secureAggregation ? { secureAggregation: { threshold: halfThreshold(sites.length) } } : {}),
      // At full resolution the sites train one after another on this machine: the last waits for the other four.
      trainingDeadlineS: factor === 1 ? 3600 : 900, evaluationDeadlineS: factor === 1 ? 1800 : 300, retryDelayS: 1, seed: options.seed % 2 ** 31,
      // Sites evaluate and train on a CPU shared by every process here: be patient before calling one dead.
      heartbeatS: 60,
      privacy,
    },
    // At full resolution a batch of two 128^3 samples needs more than the wasm backend's 4 GB heap,
    // so the site trainer runs it as exact micro-batches of one (about 2.9 GB each, see
    // core/train/micro-batches.ts). The five site processes on this one machine take turns (each
    // real hospital has its own machine), and each round runs in a thread that gives its heap back.
    worker: {
      ...(options.downsample === 1 ? { machineLock: join(options.outDir, 'machine.lock'), threadPerRound: true } : {}),
      ...(privacy?.mode === 'distributed' ? { noiseSeed: options.seed } : {}),
    },
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
      slice = await predictionPicture(federation.finalModelFile, sites[0].heldOutDir);
    } catch (err) {
      log(`could not render the prediction slice: ${errorMessage(err)}`);
    }
  }
  let baselines: BaselineResults | undefined;
  if (options.baselines) {
    baselines = await runBaselines({ sites, modelConfig, epochs: options.rounds * options.localEpochs, learningRate: options.learningRate, batchSize: options.batchSize, seed: options.seed, log });
  }
  const last = federation.rounds[federation.rounds.length - 1];
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
    comparison: baselines && last ? comparisonRows(options, last, baselines) : undefined,
    totalSeconds: (Date.now() - started) / 1000,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadAverageStart, loadAverageEnd: loadavg()[0] },
    sliceCaption: slice?.caption,
    privacy: privacy ? privacyRecord(privacy, federation.rounds.length, options.secureAggregation) : undefined,
  });
  const reportJson = join(options.outDir, 'report.json');
  const reportHtml = join(options.outDir, 'report.html');
  await writeFileAtomic(reportJson, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(reportHtml, renderReportHtml(report, slice?.png));
  return { report, reportJson, reportHtml };
}

/**
 * The federation's DP settings for --dp-epsilon: the noise multiplier that keeps epsilon after all
 * rounds within the target (every site every round), the budget that target, and noise seeded by
 * the demo's seed so a rerun reproduces the models: the server's (central), or, with secure
 * aggregation, the sites' (distributed; demo/site-worker.ts seeds them).
 */
function demoPrivacy(options: DemoOptions): PrivacyConfig | undefined {
  if (options.dpEpsilon === undefined) return undefined;
  const delta = 1e-5;
  const common = { clip: options.dpClip, noiseMultiplier: noiseMultiplierFor(options.dpEpsilon, delta, options.rounds, 1), delta, budget: { epsilon: options.dpEpsilon, delta }, samplingRate: 1 as const };
  return options.secureAggregation ? { ...common, mode: 'distributed' } : { ...common, mode: 'central', noiseSeed: options.seed };
}

/** Federated (last round), local-only and centralised, each the mean over every site's held-out cases. */
function comparisonRows(options: DemoOptions, last: RoundEntry, baselines: BaselineResults): ComparisonRow[] {
  const caseMean = (perSite: Record<string, SiteDice>): ComparisonRow['dice'] => {
    const sites = Object.values(perSite);
    const total = sites.reduce((n, s) => n + s.cases, 0) || 1;
    const mean = (region: 'ET' | 'TC' | 'WT') => sites.reduce((sum, s) => sum + (s[region] ?? 0) * s.cases, 0) / total;
    return { ET: mean('ET'), TC: mean('TC'), WT: mean('WT') };
  };
  const row = (method: ComparisonRow['method'], strategy: string, perSite: Record<string, SiteDice>): ComparisonRow =>
    ({ method, strategy, model: options.model, seed: options.seed, dice: caseMean(perSite) });
  const strategy = options.secureAggregation ? 'fedavg+secagg' : 'fedavg';
  const federated = options.dpEpsilon === undefined ? strategy : dpLabel(strategy, options.dpEpsilon);
  return [row('federated', federated, last.perSite), row('local-only', 'none', baselines.localOnly), row('centralised', 'none', baselines.centralised)];
}

/** The final global model's prediction for the first held-out case of a site, by the same path as `fedseg segment`. */
async function predictionPicture(modelFile: string, heldOutDir: string) {
  const [first] = (await discoverDataset(heldOutDir)).cases;
  if (!first?.mask) throw new FedSegError('no held-out case with a mask', { file: heldOutDir });
  const { config, tensors } = await loadModelFile(modelFile);
  const model = new SegmentationModel(config, tensors);
  try {
    const segmentation = await segmentCase(model, join(heldOutDir, first.caseId), preprocessConfig());
    return await renderPredictionSlice(first, await readLabelVolume(first.mask), segmentation.labels);
  } finally {
    model.dispose();
  }
}
