/** The per-round table the demo prints and docs/RESULTS-demo.md records. */
import type { BaselineResults, RegionDice, RoundEntry } from './schema.js';

export function formatRoundTable(rounds: RoundEntry[], totalSites: number): string {
  const header = ['round', 'sites returned', 'ET Dice', 'TC Dice', 'WT Dice', 'round time', 'peak RSS server / largest site'];
  const rows = rounds.map((r) => [
    String(r.round), `${r.sitesReturned.length} of ${totalSites}`,
    dice(r.dice.ET), dice(r.dice.TC), dice(r.dice.WT), `${r.seconds.toFixed(1)} s`,
    r.peakRssMiB ? `${r.peakRssMiB.server.toFixed(0)} / ${r.peakRssMiB.largestSite.toFixed(0)} MiB` : '-',
  ]);
  return alignTable(header, rows);
}

export function formatBaselineTable(federatedLast: RegionDice, baselines: BaselineResults): string {
  const row = (name: string, d: RegionDice) => [name, dice(d.ET), dice(d.TC), dice(d.WT)];
  return alignTable(['method (held-out mean)', 'ET Dice', 'TC Dice', 'WT Dice'], [
    row('federated (last round)', federatedLast),
    row('local-only (each site alone)', baselines.localOnlyMean),
    row('centralised (pooled data)', baselines.centralisedMean),
  ]);
}

/** Dice with 3 decimals; a dash where no value was reported. */
export function dice(value: number | null): string {
  return value === null || !Number.isFinite(value) ? '-' : value.toFixed(3);
}

/** Left-aligned first column, right-aligned numbers, two spaces between columns. */
export function alignTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
