/**
 * The demo's comparison points, on the federation's exact split and optimiser budget:
 * local-only (each site trains alone on its own training cases) and centralised (one model on
 * every site's training cases pooled). Both run `rounds x localEpochs` epochs from the same
 * seeded initial weights and are evaluated like the federation, on each site's held-out cases.
 */
import type { ModelConfig } from '../core/model/config.js';
import { createModel, type SegmentationModel } from '../core/model/network.js';
import type { BaselineResults, RegionDice, SiteDice } from '../core/report/index.js';
import type { TrainingCase } from '../core/train/data.js';
import { trainLocal } from '../core/train/trainer.js';
import type { DemoSite } from './data.js';
import { evaluateCases, loadHeldOutCases, loadTrainCases, type HeldOutCase } from './downsampled-trainer.js';

export interface BaselineOptions {
  sites: DemoSite[];
  modelConfig: ModelConfig;
  factor: number;
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number;
  log: (line: string) => void;
}

export async function runBaselines(o: BaselineOptions): Promise<BaselineResults> {
  const started = Date.now();
  const train = new Map<string, TrainingCase[]>();
  const heldOut = new Map<string, HeldOutCase[]>();
  for (const site of o.sites) {
    train.set(site.name, await loadTrainCases(site.trainDir, o.factor));
    heldOut.set(site.name, await loadHeldOutCases(site.heldOutDir, o.factor));
  }
  const fit = async (cases: TrainingCase[], label: string): Promise<SegmentationModel> => {
    const model = createModel(o.modelConfig, o.seed % 2 ** 31);
    const result = await trainLocal({ model, data: cases, epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate, seed: o.seed, patch: [...o.modelConfig.inputShape] });
    o.log(`baseline ${label}: ${result.metrics.steps} steps on ${cases.length} cases, final loss ${result.metrics.loss.toFixed(4)}`);
    return model;
  };
  const scoreOn = async (model: SegmentationModel, site: string): Promise<SiteDice> => {
    const cases = heldOut.get(site) ?? [];
    const m = await evaluateCases(model, cases, o.factor);
    return { ET: m.dice_ET, TC: m.dice_TC, WT: m.dice_WT, cases: cases.length };
  };

  const localOnly: Record<string, SiteDice> = {};
  for (const site of o.sites) {
    const model = await fit(train.get(site.name) ?? [], `local-only ${site.name}`);
    localOnly[site.name] = await scoreOn(model, site.name);
    model.dispose();
  }
  const pooled = o.sites.flatMap((s) => train.get(s.name) ?? []);
  const central = await fit(pooled, 'centralised');
  const centralised: Record<string, SiteDice> = {};
  for (const site of o.sites) centralised[site.name] = await scoreOn(central, site.name);
  central.dispose();
  return {
    localOnly, localOnlyMean: meanDice(Object.values(localOnly)),
    centralised, centralisedMean: meanDice(Object.values(centralised)),
    budget: `${o.epochs} epoch(s) over each model's training cases (= rounds x local epochs of the federation), batch ${o.batchSize}, same initial weights`,
    seconds: (Date.now() - started) / 1000,
  };
}

function meanDice(values: SiteDice[]): RegionDice {
  const mean = (region: keyof RegionDice) => {
    const xs = values.map((v) => v[region]).filter((x): x is number => x !== null && Number.isFinite(x));
    return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  };
  return { ET: mean('ET'), TC: mean('TC'), WT: mean('WT') };
}
