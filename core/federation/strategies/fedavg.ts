import { FedSegError } from '../../errors.js';
import type { RoundInstructions } from '../protocol.js';
import type { TensorList } from '../tensors.js';
import { withData } from '../tensors.js';
import { sameForAll, StatelessStrategy, type ClientUpdate } from './types.js';

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

const BLOCK = 4096;

/**
 * Case-count weighted mean of the updates (McMahan et al. 2017) when all updates are in memory.
 * Works in cache-sized blocks with float64 partial sums, folding four updates per pass over a
 * block, so each input is read once and each output written once (memory traffic at the floor,
 * read k x 4P + write 4P) while keeping the loops simple enough for the JIT.
 */
export function federatedAverage(updates: readonly ClientUpdate[], like: TensorList): TensorList {
  if (updates.length === 0) throw new FedSegError('FedAvg needs at least one update');
  const weights = updates.map((u) => u.numCases);
  if (weights.some((w) => !(w > 0) || !Number.isFinite(w))) throw new FedSegError(`aggregation weights must be positive, got ${weights.join(', ')}`, { field: 'numCases' });
  const total = weights.reduce((a, b) => a + b, 0);
  const scale = weights.map((w) => w / total);
  const acc = new Float64Array(BLOCK);
  return withData(like, like.map((t, ti) => {
    const xs = updates.map((u) => u.weights[ti].data);
    const out = new Float32Array(t.data.length);
    for (let s = 0; s < out.length; s += BLOCK) {
      const len = Math.min(BLOCK, out.length - s);
      acc.fill(0, 0, len);
      let j = 0;
      for (; j + 4 <= xs.length; j += 4) {
        const [a, b, c, d] = [xs[j], xs[j + 1], xs[j + 2], xs[j + 3]];
        const [wa, wb, wc, wd] = [scale[j], scale[j + 1], scale[j + 2], scale[j + 3]];
        for (let i = 0; i < len; i++) acc[i] += wa * a[s + i] + wb * b[s + i] + wc * c[s + i] + wd * d[s + i];
      }
      for (; j < xs.length; j++) {
        const x = xs[j];
        const w = scale[j];
        for (let i = 0; i < len; i++) acc[i] += w * x[s + i];
      }
      for (let i = 0; i < len; i++) out[s + i] = acc[i];
    }
    return out;
  }));
}

export class FedAvg extends StatelessStrategy {
  readonly name: string = 'fedavg';

  aggregate(_round: number, updates: readonly ClientUpdate[], global: TensorList): TensorList {
    return federatedAverage(updates, global);
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
