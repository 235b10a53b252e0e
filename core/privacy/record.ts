import type { PrivacyRecord } from '../report/schema.js';
import { epsilonAfter } from './accountant.js';

export interface DpSettings {
  clip: number;
  noiseMultiplier: number;
  delta: number;
  samplingRate: number;
}

/** How a DP run is named in reports' tables (experiment, demo comparison): the strategy and the target epsilon. */
export function dpLabel(strategy: string, epsilon: number): string {
  return `${strategy}+dp-eps${epsilon}`;
}

/** report.json's privacy entry after `rounds` completed rounds under `dp`. */
export function privacyRecord(dp: DpSettings, rounds: number, secureAggregation: boolean): PrivacyRecord {
  return {
    secureAggregation, clip: dp.clip, noiseMultiplier: dp.noiseMultiplier, delta: dp.delta, rounds, samplingRate: dp.samplingRate,
    epsilon: epsilonAfter(dp, rounds, dp.delta),
  };
}
