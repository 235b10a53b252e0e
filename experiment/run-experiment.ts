/**
 * `fedseg experiment`: does joining the federation pay off? On one split of the synthetic
 * hospitals and with the same per-site budget (rounds x local epochs), for each model and seed:
 * federated with each strategy (learning curve per round), local-only at every site (cross-site
 * matrix) and centralised. Everything trains and evaluates through the site trainer.
 * report.json is rewritten after every (model, seed), so a long run can be read while it goes.
 */
import { mkdir } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createStrategy, type StrategyConfig } from '../core/federation/strategies/index.js';
import type { SiteNoise } from '../core/privacy/fixed-point.js';
import { makeModelConfig, type Architecture } from '../core/model/config.js';
import { noiseMultiplierFor } from '../core/privacy/accountant.js';
import { DifferentiallyPrivate, DistributedDp, siteNoise } from '../core/privacy/dp-aggregation.js';
import { dpLabel, privacyRecord, type DpSettings } from '../core/privacy/record.js';
import { halfThreshold } from '../core/privacy/secagg-server.js';
import { initialWeights } from '../core/model/init.js';
import type { ComparisonRow } from '../core/report/index.js';
import { describeBackend, initBackend } from '../core/tf/backend.js';
import { ensureDemoData } from '../demo/data.js';
import { createDataDirTrainer } from '../site/trainer.js';
import { centralised, localOnly } from './baselines.js';
import { federationLabel, writeExperimentReport, type ExperimentReport, type ExperimentRun } from './report.js';
import type { SiteScore } from './scores.js';
import { meanOver, simulateFederation, type SimulatedSite } from './simulate.js';

export interface ExperimentOptions {
  outDir: string;
  sites: number;
  casesPerSite: number;
  heldOut: number;
  rounds: number;
  localEpochs: number;
  downsample: number;
  baseFilters: number;
  depth: number;
  learningRate: number;
  batchSize: number;
  models: Architecture[];
  seeds: number[];
  strategies: StrategyConfig[];
  dataSeed: number;
  /** Learning-curve points every this many rounds (and the last round). */
  evaluateEvery: number;
  /**
   * Also run each strategy with DP-FedAvg at each target epsilon (at `delta`, over all rounds, every
   * site every round), the noise multiplier calibrated by the accountant.
   */
  privacy?: { epsilons: number[]; clip: number; delta: number };
  /**
   * Run every federation under secure aggregation (threshold: half the sites, clip range 1), each
   * site encoding and masking its update as site/runtime.ts does; with `privacy`, distributed DP
   * (each site adds its share of the noise). Labelled e.g. "fedavg+secagg", "fedavg+secagg+dp-eps8".
   */
  secureAggregation?: boolean;
  log: (line: string) => void;
}


export async function runExperiment(o: ExperimentOptions): Promise<{ report: ExperimentReport; files: string[] }> {
  const started = Date.now();
  await mkdir(o.outDir, { recursive: true });
  const { sites: data } = await ensureDemoData({ dataDir: join(o.outDir, 'data'), sites: o.sites, casesPerSite: o.casesPerSite, heldOutPerSite: o.heldOut, seed: o.dataSeed }, o.log);
  await initBackend();
  // One trainer per site for the whole experiment: each preprocesses its cases once.
  const sites: SimulatedSite[] = data.map((s) => ({ name: s.name, trainer: createDataDirTrainer({ trainDirs: [s.trainDir], validationDirs: [s.heldOutDir] }) }));
  const pooled = createDataDirTrainer({ trainDirs: data.map((s) => s.trainDir), validationFraction: 0 });
  const window = 128 / o.downsample;
  const budget = { epochs: o.localEpochs, learningRate: o.learningRate, batchSize: o.batchSize };
  const secure = o.secureAggregation ?? false;
  const threshold = halfThreshold(sites.length);
  const report: ExperimentReport = {
    createdAt: new Date().toISOString(), backend: describeBackend(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadAverageStart: loadavg()[0] },
    settings: {
      sites: data.map((s) => ({ name: s.name, train: s.train.length, heldOut: s.heldOut.length })),
      rounds: o.rounds, localEpochs: o.localEpochs, downsample: o.downsample, window, baseFilters: o.baseFilters, depth: o.depth,
      learningRate: o.learningRate, batchSize: o.batchSize, models: o.models, seeds: o.seeds, dataSeed: o.dataSeed,
      strategies: o.strategies.flatMap((s) => {
        const name = federationLabel(s.name, secure);
        return [name, ...(o.privacy?.epsilons ?? []).map((epsilon) => dpLabel(name, epsilon))];
      }),
      evaluateEvery: o.evaluateEvery, ...(secure ? { secureAggregation: { threshold } } : {}),
    },
    comparison: [], runs: [], crossSite: [], seconds: 0,
  };
  let files: string[] = [];
  const save = async () => {
    report.seconds = (Date.now() - started) / 1000;
    files = await writeExperimentReport(o.outDir, report);
  };

  // Seeds outside models, so an interrupted run still has every model at its first seeds.
  for (const seed of o.seeds) {
    for (const model of o.models) {
      const config = makeModelConfig({ arch: model, baseFilters: o.baseFilters, depth: o.depth, downsample: o.downsample, inputShape: [window, window, window] });
      const initial = initialWeights(config, seed);
      const record = (run: ExperimentRun) => {
        report.runs.push(run);
        const mean = meanOver(run.perSite);
        const row: ComparisonRow = { method: run.method, strategy: run.strategy, model, seed, dice: mean.dice };
        report.comparison.push(row);
        o.log(`${model} seed ${seed} ${run.method}${run.method === 'federated' ? ` (${run.strategy})` : ''}: mean held-out Dice ET ${mean.dice.ET.toFixed(3)} TC ${mean.dice.TC.toFixed(3)} WT ${mean.dice.WT.toFixed(3)} (${run.seconds.toFixed(0)} s)`);
      };
      for (const strategyConfig of o.strategies) {
        const name = federationLabel(strategyConfig.name, secure);
        // Secure rounds' noise (distributed DP) is seeded by the run's seed, like the central noise below.
        const secureRound = (dp: SiteNoise | null) => (secure ? { secure: { threshold, clipRange: 1, dp, noiseSeed: seed } } : {});
        const t0 = Date.now();
        const { curve } = await simulateFederation({ sites, config, strategy: createStrategy(strategyConfig), initial, rounds: o.rounds, local: budget, seed, evaluateEvery: o.evaluateEvery, ...secureRound(null), log: o.log });
        record({ method: 'federated', strategy: name, model, seed, perSite: curve[curve.length - 1].perSite, curve, seconds: (Date.now() - t0) / 1000 });
        for (const epsilon of o.privacy?.epsilons ?? []) {
          const { clip, delta } = o.privacy!;
          const dp: DpSettings = { clip, delta, samplingRate: 1, noiseMultiplier: noiseMultiplierFor(epsilon, delta, o.rounds, 1) };
          // Seeded by the run's seed, so the experiment stays reproducible (nobody else sees this noise).
          const central = secure ? null : new DifferentiallyPrivate(createStrategy(strategyConfig), { ...dp, noiseSeed: seed });
          const strategy = central ?? new DistributedDp(createStrategy(strategyConfig), { ...dp, threshold });
          const logRound = (line: string) => {
            const r = central?.lastReport;
            const d = strategy.lastReport;
            o.log(r ? `${line}; DP: ${r.clipped} of ${r.updates} updates (median norm ${r.medianNorm.toPrecision(3)}) clipped to ${clip}, noise std ${r.noiseStd.toPrecision(3)} per parameter`
              : d ? `${line}; distributed DP: ${d.updates} clipped, noised inputs, noise std ${d.noiseStd.toPrecision(3)} per parameter` : line);
          };
          const t1 = Date.now();
          const run = await simulateFederation({ sites, config, strategy, initial, rounds: o.rounds, local: budget, seed, evaluateEvery: o.evaluateEvery, ...secureRound(secure ? siteNoise(dp, threshold) : null), log: logRound });
          record({
            method: 'federated', strategy: dpLabel(name, epsilon), model, seed, perSite: run.curve[run.curve.length - 1].perSite, curve: run.curve,
            privacy: privacyRecord(dp, o.rounds, secure), seconds: (Date.now() - t1) / 1000,
          });
        }
      }
      const baseline = { sites, config, initial, budget: { ...budget, epochs: o.rounds * o.localEpochs }, seed };
      let t0 = Date.now();
      const matrix = await localOnly(baseline);
      const own: Record<string, SiteScore> = Object.fromEntries(sites.map((s) => [s.name, matrix[s.name][s.name]]));
      record({ method: 'local-only', strategy: 'none', model, seed, perSite: own, seconds: (Date.now() - t0) / 1000 });
      report.crossSite.push({ model, seed, matrix });
      t0 = Date.now();
      record({ method: 'centralised', strategy: 'none', model, seed, perSite: await centralised(baseline, pooled), seconds: (Date.now() - t0) / 1000 });
      await save();
    }
  }
  await save();
  return { report, files };
}
