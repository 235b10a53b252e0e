/**
 * Metrics speed on the full 240 x 240 x 155 BraTS grid: time for one case (all three regions:
 * Dice, HD95 via the exact EDT, sensitivity, specificity, volumes) against the 2 s per case per
 * region target, for a typical tumour and for a worst case whose masks span the whole grid.
 */
import { computeCaseMetrics, type LabelVolume } from '../core/metrics/index.js';

const DIMS = [240, 240, 155] as const;

export interface MetricsBenchRow { scenario: string; msPerCase: number; msPerRegion: number; targetMsPerRegion: number; wtDice: number; wtHd95: number }
export interface MetricsBenchResult { name: 'metrics'; table: string; json: { rows: MetricsBenchRow[] } }

export async function runMetricsBench(options: { quick?: boolean } = {}): Promise<MetricsBenchResult> {
  const repeats = options.quick ? 1 : 3;
  const scenarios: Array<[string, () => [LabelVolume, LabelVolume]]> = [
    ['typical tumour (~300 mL WT), 1 mm iso', () => tumourPair([1, 1, 1], 40)],
    ['typical tumour, anisotropic 0.9x0.9x3 mm', () => tumourPair([0.9, 0.9, 3], 40)],
    ['worst case: masks span the grid', () => tumourPair([1, 1, 1], 140)],
  ];
  const rows: MetricsBenchRow[] = [];
  for (const [scenario, make] of scenarios) {
    const [pred, truth] = make();
    if (!options.quick) computeCaseMetrics(pred, truth); // warm-up so the JIT has compiled the loops
    const timed = Array.from({ length: repeats }, () => {
      const start = performance.now();
      const metrics = computeCaseMetrics(pred, truth);
      return { ms: performance.now() - start, metrics };
    });
    const best = Math.min(...timed.map((t) => t.ms));
    const { metrics } = timed[0];
    rows.push({ scenario, msPerCase: round(best), msPerRegion: round(best / 3), targetMsPerRegion: 2000, wtDice: round(metrics.WT.dice, 4), wtHd95: round(metrics.WT.hd95, 2) });
  }
  const table = [
    'metrics on 240x240x155 (best of runs)      ms/case  ms/region  target',
    ...rows.map((r) => `${r.scenario.padEnd(42)} ${String(r.msPerCase).padStart(8)} ${String(r.msPerRegion).padStart(10)} ${String(r.targetMsPerRegion).padStart(7)}`),
  ].join('\n');
  return { name: 'metrics', table, json: { rows } };
}

/** Nested-sphere truth (edema, core, enhancing) and a shifted, resized prediction. */
function tumourPair(spacing: [number, number, number], radius: number): [LabelVolume, LabelVolume] {
  const truth = new Uint8Array(DIMS[0] * DIMS[1] * DIMS[2]);
  const pred = new Uint8Array(truth.length);
  paint(truth, [120, 120, 77], [radius, radius / 2, radius / 3.3], [2, 1, 4]);
  paint(pred, [117, 123, 75], [radius * 1.05, radius / 2.2, radius / 3], [2, 1, 4]);
  return [{ data: pred, dims: DIMS, spacing, source: 'pred' }, { data: truth, dims: DIMS, spacing, source: 'truth' }];
}

function paint(data: Uint8Array, centre: number[], radii: number[], labels: number[]): void {
  const [nx, ny] = DIMS;
  const reach = Math.ceil(Math.max(...radii));
  const from = centre.map((c) => Math.max(0, Math.floor(c - reach)));
  const to = centre.map((c, axis) => Math.min(DIMS[axis] - 1, Math.ceil(c + reach)));
  for (let k = from[2]; k <= to[2]; k++) {
    for (let j = from[1]; j <= to[1]; j++) {
      for (let i = from[0]; i <= to[0]; i++) {
        const d = Math.hypot(i - centre[0], j - centre[1], k - centre[2]);
        for (let s = radii.length - 1; s >= 0; s--) {
          if (d < radii[s]) {
            data[i + nx * (j + ny * k)] = labels[s];
            break;
          }
        }
      }
    }
  }
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
