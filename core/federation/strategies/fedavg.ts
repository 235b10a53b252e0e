import { FedSegError } from '../../errors.js';
import type { RoundInstructions } from '../protocol.js';
import type { TensorList } from '../tensors.js';
import { withData } from '../tensors.js';
import { sameForAll, StatelessStrategy, type MeanAggregation } from './types.js';

/**
 * Streaming weighted average sum(n_k w_k) / sum(n_k) (McMahan et al. 2017). Accumulates in float64
 * so five or five hundred sites lose no precision, holding one update at a time. Float64 addition
 * is not associative, so callers add in a fixed order (the server sorts by site) to keep the
 * result bit-identical however the updates arrived.
 */
export class WeightedAverage {
  private readonly sums: Float64Array[];
  private totalWeight = 0;

  constructor(private readonly like: TensorList) {
    this.sums = like.map((t) => new Float64Array(t.data.length));
  }

  add(weights: TensorList, weight: number): void {
    if (!(weight > 0) || !Number.isFinite(weight)) throw new FedSegError(`aggregation weight must be positive, got ${weight}`, { field: 'numCases' });
    for (let k = 0; k < this.sums.length; k++) {
      const acc = this.sums[k];
      const x = weights[k].data;
      for (let i = 0; i < acc.length; i++) acc[i] += weight * x[i];
    }
    this.totalWeight += weight;
  }

  result(): TensorList {
    if (this.totalWeight === 0) throw new FedSegError('cannot average zero updates');
    const inv = 1 / this.totalWeight;
    return withData(this.like, this.sums.map((acc) => {
      const out = new Float32Array(acc.length);
      for (let i = 0; i < acc.length; i++) out[i] = acc[i] * inv;
      return out;
    }));
  }
}

/** A mean aggregation whose finish() passes the weighted average through `step` (none for FedAvg). */
export function meanAggregation(global: TensorList, step: (average: TensorList) => TensorList = (average) => average): MeanAggregation {
  const sum = new WeightedAverage(global);
  return { kind: 'mean', add: (weights, weight) => sum.add(weights, weight), finish: () => step(sum.result()) };
}

export class FedAvg extends StatelessStrategy {
  readonly name: string = 'fedavg';

  begin(_round: number, global: TensorList): MeanAggregation {
    return meanAggregation(global);
  }
}

/**
 * FedProx (Li et al. 2020): FedAvg aggregation; each site adds mu/2 * ||w - w_global||^2 to its
 * local loss, so the only server-side difference is sending mu.
 */
export class FedProx extends FedAvg {
  override readonly name = 'fedprox';

  constructor(private readonly mu: number) {
    super();
    if (!(mu >= 0)) throw new FedSegError(`FedProx mu must be >= 0, got ${mu}`, { field: 'strategy.mu' });
  }

  override configureRound(_round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions> {
    return sameForAll(sites, { ...base, mu: this.mu });
  }
}
