/**
 * DP-FedAvg aggregation (McMahan et al., ICLR 2018), as a step on the aggregate that any mean
 * strategy (FedAvg, FedProx, FedAvgM, FedAdam, FedYogi) then consumes like a plain average:
 *     average = w_global + (sum_k clip_C(w_k - w_global) + N(0, sigma^2 C^2 I)) / D
 * - clip_C is re-applied here in float64, whatever the site sent: it is what bounds one site's
 *   influence on the sum by C (sites clip too, before anything leaves them; core/privacy/clip.ts).
 * - Every site weighs 1, not its case count: with weights n_k the sensitivity would be C times the
 *   largest weight, and case counts are the site's own claim. McMahan et al. cap weights at 1;
 *   equal weights are that cap set at the smallest site.
 * - D is fixed: the expected number of participants (sampling rate x the sites the round was
 *   configured for), not the number that returned, which would itself depend on who took part.
 *   Sites that decline or drop out shrink the step towards the global model instead.
 * Coordinate-wise strategies (median, trimmed mean) have no sum to add noise to and are refused.
 */
import { FedSegError } from '../errors.js';
import { lowerMedian } from '../federation/bound-updates.js';
import type { RoundInstructions } from '../federation/protocol.js';
import { withData, type TensorList } from '../federation/tensors.js';
import type { MeanAggregation, Strategy } from '../federation/strategies/index.js';
import { clipFactor } from './clip.js';
import type { SiteNoise } from './fixed-point.js';
import { GaussianStream, noiseKey } from './gaussian-noise.js';

export interface DpAggregationParams {
  clip: number;
  noiseMultiplier: number;
  samplingRate: number;
  /** Seeded (reproducible) noise; undefined draws a fresh secret key each round. */
  noiseSeed?: number;
}

/** What the last finished round did, for the server log and the experiment report. */
export interface DpAverageReport {
  round: number;
  /** Updates summed (under secure aggregation: the survivors). */
  updates: number;
  denominator: number;
  /** Standard deviation of the noise per parameter of the average: sigma * C / D centrally, sigma * C * sqrt(survivors / t) / D distributed. */
  noiseStd: number;
}

/** Central DP also knows each update's norm (under secure aggregation the server sees no single update). */
export interface DpRoundReport extends DpAverageReport {
  clipped: number;
  /** Lower median of the updates' norms before clipping (how the clip compares with honest updates). */
  medianNorm: number;
}

/**
 * Distributed DP: each site's share of the noise. Sites add N(0, sigma^2 C^2 / t) for the threshold
 * t, so that the fewest survivors a secure round can unmask (t) still carry sigma^2 C^2 in all; K > t
 * survivors carry K/t times that, more noise than the accountant counts (conservative).
 */
export function siteNoise(dp: { clip: number; noiseMultiplier: number }, threshold: number): SiteNoise {
  if (!Number.isInteger(threshold) || threshold < 1) throw new FedSegError(`the secure-aggregation threshold must be a positive integer, got ${threshold}`, { field: 'secureAggregation.threshold' });
  return { clip: dp.clip, noiseStd: (dp.noiseMultiplier * dp.clip) / Math.sqrt(threshold) };
}

/**
 * What both DP wrappers share: they pass the inner mean strategy's configuration and state through,
 * and remember how many sites each round was configured for, the basis of the fixed denominator D.
 */
abstract class FixedDenominatorMean implements Strategy {
  readonly name: string;
  private configuredSites = new Map<number, number>();

  constructor(protected readonly inner: Strategy, private readonly samplingRate: number) {
    this.name = inner.name;
  }

  abstract begin(round: number, global: TensorList): MeanAggregation;

  configureRound(round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions> {
    this.configuredSites = new Map([[round, sites.length]]);
    return this.inner.configureRound(round, sites, base);
  }

  exportState(): TensorList[] | null {
    return this.inner.exportState();
  }

  importState(state: TensorList[]): void {
    this.inner.importState(state);
  }

  /** D: sampling rate x the sites the round was configured for. */
  protected denominator(round: number): number {
    const sites = this.configuredSites.get(round);
    if (sites === undefined || sites === 0) throw new FedSegError(`round ${round} was not configured with any site; DP-FedAvg needs the site count for its fixed denominator`);
    return this.samplingRate * sites;
  }

  /** The inner strategy's aggregation for `round`, which must be a mean. */
  protected beginInner(round: number, global: TensorList): MeanAggregation {
    const inner = this.inner.begin(round, global);
    if (inner.kind !== 'mean') throw new FedSegError(`differential privacy needs a strategy that averages (fedavg, fedprox, fedavgm, fedadam, fedyogi); ${this.inner.name} is coordinate-wise`, { field: 'strategy' });
    return inner;
  }
}

/** Wraps a mean strategy so its rounds aggregate with clipping, fixed denominator and Gaussian noise. */
export class DifferentiallyPrivate extends FixedDenominatorMean {
  lastReport: DpRoundReport | null = null;

  constructor(inner: Strategy, private readonly params: DpAggregationParams) {
    super(inner, params.samplingRate);
    clipFactor(0, params.clip);
    if (!(params.noiseMultiplier > 0) || !Number.isFinite(params.noiseMultiplier)) throw new FedSegError(`the noise multiplier must be positive, got ${params.noiseMultiplier}`, { field: 'privacy.noiseMultiplier' });
    if (!(params.samplingRate > 0 && params.samplingRate <= 1)) throw new FedSegError(`the sampling rate must be in (0, 1], got ${params.samplingRate}`, { field: 'privacy.samplingRate' });
  }

  begin(round: number, global: TensorList): MeanAggregation {
    const denominator = this.denominator(round);
    const inner = this.beginInner(round, global);
    const { clip, noiseMultiplier, noiseSeed } = this.params;
    const sums = global.map((t) => new Float64Array(t.data.length));
    const norms: number[] = [];
    let clipped = 0;
    return {
      kind: 'mean',
      add: (weights) => {
        let squared = 0;
        weights.forEach((t, k) => {
          const g = global[k].data;
          for (let i = 0; i < g.length; i++) squared += (t.data[i] - g[i]) ** 2;
        });
        norms.push(Math.sqrt(squared));
        const factor = clipFactor(norms[norms.length - 1], clip);
        if (factor < 1) clipped++;
        weights.forEach((t, k) => {
          const g = global[k].data;
          const acc = sums[k];
          for (let i = 0; i < g.length; i++) acc[i] += (t.data[i] - g[i]) * factor;
        });
      },
      finish: () => {
        if (norms.length === 0) throw new FedSegError('cannot average zero updates');
        const noise = new GaussianStream(noiseKey(noiseSeed, round));
        const average = withData(global, sums.map((acc, k) => {
          noise.addTo(acc, noiseMultiplier * clip);
          const g = global[k].data;
          const out = new Float32Array(acc.length);
          for (let i = 0; i < out.length; i++) out[i] = g[i] + acc[i] / denominator;
          return out;
        }));
        inner.add(average, 1);
        const next = inner.finish();
        this.lastReport = { round, updates: norms.length, clipped, medianNorm: lowerMedian(norms), denominator, noiseStd: (noiseMultiplier * clip) / denominator };
        return next;
      },
    };
  }

}

/**
 * Distributed DP-FedAvg under secure aggregation: the sites clipped their updates, weighed them 1
 * and added their shares of the noise (siteNoise) before masking, so the server adds no noise. It
 * gets the unmasked mean of K equal-weight inputs (as `add(global + mean, K)`, what a secure round
 * hands any mean strategy), turns it back into their sum and divides by the fixed denominator D:
 *     average = w_global + (sum_k clip_C(w_k - w_global) + noise) / D.
 */
export class DistributedDp extends FixedDenominatorMean {
  lastReport: DpAverageReport | null = null;

  constructor(inner: Strategy, private readonly params: { clip: number; noiseMultiplier: number; samplingRate: number; threshold: number }) {
    super(inner, params.samplingRate);
    siteNoise(params, params.threshold);
  }

  begin(round: number, global: TensorList): MeanAggregation {
    const denominator = this.denominator(round);
    const inner = this.beginInner(round, global);
    const sums = global.map((t) => new Float64Array(t.data.length));
    let inputs = 0;
    return {
      kind: 'mean',
      add: (weights, count) => {
        inputs += count;
        weights.forEach((t, k) => {
          const g = global[k].data;
          const acc = sums[k];
          for (let i = 0; i < g.length; i++) acc[i] += (t.data[i] - g[i]) * count;
        });
      },
      finish: () => {
        if (inputs === 0) throw new FedSegError('cannot average zero updates');
        inner.add(withData(global, sums.map((acc, k) => {
          const g = global[k].data;
          return Float32Array.from(acc, (v, i) => g[i] + v / denominator);
        })), 1);
        const next = inner.finish();
        const { noiseStd } = siteNoise(this.params, this.params.threshold);
        this.lastReport = { round, updates: inputs, denominator, noiseStd: (noiseStd * Math.sqrt(inputs)) / denominator };
        return next;
      },
    };
  }
}
