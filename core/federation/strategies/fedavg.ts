import { FedSegError } from '../../errors.js';
import type { RoundInstructions } from '../protocol.js';
import type { TensorList } from '../tensors.js';
import { withData } from '../tensors.js';
import { sameForAll, type ClientUpdate, type Strategy } from './types.js';

/**
 * Streaming weighted average sum(n_k w_k) / sum(n_k). Accumulates in float64 so that the result does
 * not depend on update order beyond the last float32 rounding and so five or five hundred sites
 * lose no precision; only one update needs to be held at a time.
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

  get count(): number {
    return this.totalWeight;
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

/**
 * Case-count weighted mean of the updates (McMahan et al. 2017) when all updates are in memory:
 * one fused pass per tensor that sums in a float64 register and writes each output once, so memory
 * traffic is the floor (read k x 4P, write 4P).
 */
export function federatedAverage(updates: readonly ClientUpdate[], like: TensorList): TensorList {
  if (updates.length === 0) throw new FedSegError('FedAvg needs at least one update');
  const weights = updates.map((u) => u.numCases);
  if (weights.some((w) => !(w > 0) || !Number.isFinite(w))) throw new FedSegError(`aggregation weights must be positive, got ${weights.join(', ')}`, { field: 'numCases' });
  const total = weights.reduce((a, b) => a + b, 0);
  const scale = Float64Array.from(weights, (w) => w / total);
  const k = updates.length;
  return withData(like, like.map((t, ti) => {
    const xs = updates.map((u) => u.weights[ti].data);
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += scale[j] * xs[j][i];
      out[i] = sum;
    }
    return out;
  }));
}

export class FedAvg implements Strategy {
  readonly name: string = 'fedavg';

  configureRound(_round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions> {
    return sameForAll(sites, { ...base, mu: 0 });
  }

  aggregate(_round: number, updates: readonly ClientUpdate[], global: TensorList): TensorList {
    return federatedAverage(updates, global);
  }

  exportState(): TensorList[] | null {
    return null;
  }

  importState(): void {}
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
