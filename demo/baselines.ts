/**
 * `fedseg demo --baselines`: local-only and centralised models on the federation's exact split,
 * initial weights and per-site budget (experiment/baselines.ts), through the same site trainer.
 */
import { initialWeights } from '../core/model/init.js';
import type { ModelConfig } from '../core/model/config.js';
import type { BaselineResults, SiteDice } from '../core/report/index.js';
import { createDataDirTrainer } from '../site/trainer.js';
import { centralised, localOnly } from '../experiment/baselines.js';
import type { SiteScore } from '../experiment/scores.js';
import { meanOver, type SimulatedSite } from '../experiment/simulate.js';
import type { DemoSite } from './data.js';

export interface BaselineOptions {
  sites: DemoSite[];
  modelConfig: ModelConfig;
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
  log: (line: string) => void;
}

export async function runBaselines(o: BaselineOptions): Promise<BaselineResults> {
  const started = Date.now();
  const sites: SimulatedSite[] = o.sites.map((s) => ({ name: s.name, trainer: createDataDirTrainer({ trainDirs: [s.trainDir], validationDirs: [s.heldOutDir] }) }));
  const run = {
    sites, config: o.modelConfig, initial: initialWeights(o.modelConfig, o.seed % 2 ** 31),
    budget: { epochs: o.epochs, learningRate: o.learningRate, batchSize: o.batchSize }, seed: o.seed % 2 ** 31,
  };
  o.log(`baselines: local-only at each of ${sites.length} sites, ${o.epochs} epochs each`);
  const matrix = await localOnly(run);
  const own = Object.fromEntries(sites.map((s) => [s.name, matrix[s.name][s.name]]));
  o.log('baselines: centralised on the pooled training cases');
  const pooled = createDataDirTrainer({ trainDirs: o.sites.map((s) => s.trainDir), validationFraction: 0 });
  const central = await centralised(run, pooled);
  return {
    localOnly: siteDice(own), localOnlyMean: meanOver(own).dice,
    centralised: siteDice(central), centralisedMean: meanOver(central).dice,
    budget: `${o.epochs} epoch(s) over each model's training cases (= rounds x local epochs of the federation), batch ${o.batchSize}, same initial weights`,
    seconds: (Date.now() - started) / 1000,
  };
}

function siteDice(perSite: Record<string, SiteScore>): Record<string, SiteDice> {
  return Object.fromEntries(Object.entries(perSite).map(([site, s]) => [site, { ...s.dice, cases: s.numCases }]));
}

