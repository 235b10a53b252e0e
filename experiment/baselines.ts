/**
 * The two reference points of a federation, trained through the same site trainer with the same
 * per-site budget as the federation (rounds x local epochs over each site's own cases):
 * local-only (each hospital alone, scored at every hospital: the cross-site matrix) and
 * centralised (every hospital's training cases pooled, which the law forbids but which bounds
 * what a federation can reach).
 */
import { roundSeed } from '../core/federation/round-seed.js';
import type { TensorList } from '../core/federation/tensors.js';
import type { ModelConfig } from '../core/model/config.js';
import type { LocalTrainer } from '../site/runtime.js';
import type { SiteScore } from './scores.js';
import { evaluateAtSites, never, type LocalBudget, type SimulatedSite } from './simulate.js';

export interface BaselineRun {
  sites: readonly SimulatedSite[];
  config: ModelConfig;
  initial: TensorList;
  /** Epochs = the federation's rounds x local epochs. */
  budget: LocalBudget;
  seed: number;
}

async function trainFromInitial(trainer: LocalTrainer, run: BaselineRun): Promise<TensorList> {
  const instructions = { ...run.budget, mu: 0, seed: roundSeed(run.seed, 1, 1) };
  return (await trainer.train({ config: run.config, weights: run.initial, instructions, signal: never, onProgress: () => {} })).weights;
}

/** matrix[trainedAt][scoredAt]: each hospital's own model scored on every hospital's held-out cases. */
export async function localOnly(run: BaselineRun): Promise<Record<string, Record<string, SiteScore>>> {
  const matrix: Record<string, Record<string, SiteScore>> = {};
  for (const site of run.sites) matrix[site.name] = await evaluateAtSites(run.sites, run.config, await trainFromInitial(site.trainer, run));
  return matrix;
}

/** One model on the pooled training cases (`pooled` is a trainer over every site's training folders), scored at each site. */
export async function centralised(run: BaselineRun, pooled: LocalTrainer): Promise<Record<string, SiteScore>> {
  return evaluateAtSites(run.sites, run.config, await trainFromInitial(pooled, run));
}
