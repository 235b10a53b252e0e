/**
 * Federated rounds in one process, for experiments: the same site trainers (site/trainer.ts) and
 * the same strategies (core/federation/strategies) as a real federation, without the transport.
 * Like Flower's simulation mode: what is compared is the learning, and `fedseg demo` shows the
 * identical learning over WebSockets, SQLite and approvals.
 */
import { roundSeed } from '../core/federation/round-seed.js';
import { aggregateInMemory, type ClientUpdate, type Strategy } from '../core/federation/strategies/index.js';
import type { TensorList } from '../core/federation/tensors.js';
import type { ModelConfig } from '../core/model/config.js';
import type { LocalTrainer } from '../site/runtime.js';
import { scoreFromMetrics, type SiteScore } from './scores.js';
import { aggregateSecurely, type SecureRoundSettings } from './secure-round.js';

export interface SimulatedSite {
  name: string;
  trainer: LocalTrainer;
}

export interface LocalBudget {
  epochs: number;
  learningRate: number;
  batchSize: number;
}

export interface SimulationOptions {
  sites: readonly SimulatedSite[];
  config: ModelConfig;
  strategy: Strategy;
  initial: TensorList;
  rounds: number;
  local: LocalBudget;
  seed: number;
  /** Score the global model at every site after every this many rounds (and always after the last). */
  evaluateEvery?: number;
  /** Aggregate under secure aggregation (experiment/secure-round.ts); absent: plain updates. */
  secure?: SecureRoundSettings;
  log: (line: string) => void;
}

export interface RoundScores {
  round: number;
  perSite: Record<string, SiteScore>;
}

/** In-process runs are never cancelled. */
export const never = new AbortController().signal;

/** Runs `rounds` rounds and scores the global model at every site as it goes (the learning curve). */
export async function simulateFederation(o: SimulationOptions): Promise<{ global: TensorList; curve: RoundScores[] }> {
  let global = o.initial;
  const curve: RoundScores[] = [];
  const names = o.sites.map((s) => s.name);
  for (let round = 1; round <= o.rounds; round++) {
    const instructions = o.strategy.configureRound(round, names, { ...o.local, mu: 0, seed: roundSeed(o.seed, round, 1) });
    const updates: ClientUpdate[] = [];
    for (const site of o.sites) {
      const result = await site.trainer.train({
        config: o.config, weights: global, instructions: instructions.get(site.name)!, signal: never, onProgress: () => {},
      });
      updates.push({ site: site.name, numCases: result.numCases, weights: result.weights });
    }
    global = o.secure ? aggregateSecurely(o.strategy, round, updates, global, o.secure) : aggregateInMemory(o.strategy, round, updates, global);
    if (round % (o.evaluateEvery ?? 1) === 0 || round === o.rounds) {
      curve.push({ round, perSite: await evaluateAtSites(o.sites, o.config, global) });
      o.log(`  ${o.strategy.name} round ${round}/${o.rounds}: mean WT Dice ${meanOver(curve[curve.length - 1].perSite).dice.WT.toFixed(3)}`);
    }
  }
  return { global, curve };
}

/** Each site's held-out scores for one model. */
export async function evaluateAtSites(sites: readonly SimulatedSite[], config: ModelConfig, weights: TensorList): Promise<Record<string, SiteScore>> {
  const perSite: Record<string, SiteScore> = {};
  for (const site of sites) {
    const { numCases, metrics } = await site.trainer.evaluate({ config, weights, signal: never });
    perSite[site.name] = scoreFromMetrics(numCases, metrics);
  }
  return perSite;
}

/** Mean over all sites' held-out cases (each site's mean weighted by its case count). */
export function meanOver(perSite: Record<string, SiteScore>): Omit<SiteScore, 'numCases'> {
  const sites = Object.values(perSite);
  const total = sites.reduce((n, s) => n + s.numCases, 0) || 1;
  const mean = (pick: (s: SiteScore) => number) => sites.reduce((sum, s) => sum + pick(s) * s.numCases, 0) / total;
  return {
    dice: { ET: mean((s) => s.dice.ET), TC: mean((s) => s.dice.TC), WT: mean((s) => s.dice.WT) },
    hd95: { ET: mean((s) => s.hd95.ET), TC: mean((s) => s.hd95.TC), WT: mean((s) => s.hd95.WT) },
  };
}
