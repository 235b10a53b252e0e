/**
 * The privacy budget of a federation: epsilon spent by the rounds completed so far, what the next
 * round would bring it to, and whether the budget allows that round. The server asks before every
 * round and announces the numbers to the sites' approvals.
 */
import type { RoundPrivacy } from '../federation/protocol.js';
import { epsilonAfter } from './accountant.js';
import type { PrivacyConfig } from './config.js';

/** The privacy spent by a federation's released models, for the operator view. */
export interface PrivacySpent {
  mode: PrivacyConfig['mode'];
  clip: number;
  noiseMultiplier: number;
  delta: number;
  /** Epsilon at `delta` after the rounds completed. */
  epsilonSpent: number;
  budget: { epsilon: number; delta: number };
}

export interface BudgetCheck {
  /** What the announcement of the next round carries. */
  privacy: RoundPrivacy;
  /** Epsilon at the budget's delta after the next round, which the budget is compared with. */
  epsilonAtBudgetDelta: number;
  /** Null when the next round fits the budget, else why the server does not start it. */
  refusal: string | null;
}

/** The check before round `completed + 1`. */
export function checkBudget(config: PrivacyConfig, completed: number): BudgetCheck {
  const mechanism = { noiseMultiplier: config.noiseMultiplier, samplingRate: config.samplingRate };
  const next = completed + 1;
  const epsilonAtBudgetDelta = epsilonAfter(mechanism, next, config.budget.delta);
  const privacy: RoundPrivacy = {
    mode: config.mode, clip: config.clip, noiseMultiplier: config.noiseMultiplier, delta: config.delta,
    epsilonSoFar: epsilonAfter(mechanism, completed, config.delta), epsilonAfterRound: epsilonAfter(mechanism, next, config.delta),
    budget: config.budget,
  };
  const refusal = epsilonAtBudgetDelta > config.budget.epsilon
    ? `privacy budget: round ${next} would bring epsilon to ${epsilonAtBudgetDelta.toFixed(3)} at delta ${config.budget.delta}, over the budget of ${config.budget.epsilon}; `
      + `the federation ends after ${completed} round(s) (noise multiplier ${config.noiseMultiplier}, every site every round)`
    : null;
  return { privacy, epsilonAtBudgetDelta, refusal };
}
