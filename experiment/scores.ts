/** Held-out scores of one model at one site, read from the metrics a site trainer reports. */
import { regionMetricKey, REGIONS } from '../core/metrics/index.js';

export interface RegionValues { ET: number; TC: number; WT: number }

export interface SiteScore {
  numCases: number;
  dice: RegionValues;
  /** mm */
  hd95: RegionValues;
}

export function scoreFromMetrics(numCases: number, metrics: Record<string, number>): SiteScore {
  const pick = (metric: 'dice' | 'hd95') => Object.fromEntries(REGIONS.map((r) => [r, metrics[regionMetricKey(metric, r)] ?? NaN])) as unknown as RegionValues;
  return { numCases, dice: pick('dice'), hd95: pick('hd95') };
}
