import { lowerMedian } from '../core/federation/bound-updates.js';

/**
 * Per-round global metrics: each site's evaluation of the round's global model, weighted by its
 * validation cases, each count capped at the round's lower-median count (as for training weights
 * of unregistered sites), so one site claiming a huge count cannot set the operator's Dice.
 */
export interface RoundMetrics {
  round: number;
  sites: string[];
  numCases: number;
  metrics: Record<string, number>;
}

export function globalMetricsByRound(rows: readonly { round: number; site: string; name: string; value: number }[]): RoundMetrics[] {
  const byRound = new Map<number, Map<string, Record<string, number>>>();
  for (const r of rows) {
    const sites = byRound.get(r.round) ?? new Map<string, Record<string, number>>();
    const m = sites.get(r.site) ?? {};
    m[r.name] = r.value;
    sites.set(r.site, m);
    byRound.set(r.round, sites);
  }
  return [...byRound.entries()].sort(([a], [b]) => a - b).map(([round, sites]) => {
    const sums: Record<string, number> = {};
    const weights: Record<string, number> = {};
    let numCases = 0;
    const cap = lowerMedian([...sites.values()].map((m) => m.numCases ?? 0));
    for (const m of sites.values()) {
      const w = Math.min(m.numCases ?? 0, cap);
      numCases += w;
      for (const [name, value] of Object.entries(m)) {
        if (name === 'numCases' || w <= 0) continue;
        sums[name] = (sums[name] ?? 0) + w * value;
        weights[name] = (weights[name] ?? 0) + w;
      }
    }
    const metrics = Object.fromEntries(Object.keys(sums).map((k) => [k, sums[k] / weights[k]]));
    return { round, sites: [...sites.keys()].sort(), numCases, metrics };
  });
}
