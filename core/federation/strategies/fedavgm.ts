import { FedSegError } from '../../errors.js';
import type { RoundInstructions } from '../protocol.js';
import type { TensorList } from '../tensors.js';
import { firstNonFinite, manifestMismatch, withData } from '../tensors.js';
import { meanAggregation } from './fedavg.js';
import { sameForAll, type MeanAggregation, type Strategy } from './types.js';

/**
 * FedAvgM (Hsu et al. 2019, "Measuring the effects of non-identical data distribution"): server
 * momentum on the FedAvg pseudo-gradient. With delta = average - global, the server keeps
 * v <- beta v + delta and moves global <- global + eta v. Consecutive rounds that agree add up,
 * which helps when sites differ and each round's average moves only a little. v is checkpointed.
 * Like FedAdam's moments, the new velocity is computed into new arrays and adopted only when it and
 * every new weight are finite: an overflowing step throws and leaves v as it was, so the server
 * abandons the round and never checkpoints a non-finite state.
 */
export class FedAvgM implements Strategy {
  readonly name = 'fedavgm';
  private velocity: Float32Array[] | null = null;
  private like: TensorList | null = null;

  constructor(private readonly p: { eta: number; beta: number }) {
    if (!(p.eta > 0) || !Number.isFinite(p.eta)) throw new FedSegError(`fedavgm eta must be positive, got ${p.eta}`, { field: 'strategy.eta' });
    if (!(p.beta >= 0 && p.beta < 1)) throw new FedSegError(`fedavgm beta must be in [0, 1), got ${p.beta}`, { field: 'strategy.beta' });
  }

  configureRound(_round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions> {
    return sameForAll(sites, { ...base, mu: 0 });
  }

  begin(_round: number, global: TensorList): MeanAggregation {
    return meanAggregation(global, (avg) => this.step(avg, global));
  }

  private step(avg: TensorList, global: TensorList): TensorList {
    if (this.like && manifestMismatch(this.like, global)) throw new FedSegError('fedavgm state does not match the global model', { field: 'strategyState' });
    const velocity = this.velocity;
    const nextVelocity: Float32Array[] = [];
    const { eta, beta } = this.p;
    const out = global.map((t, k) => {
      const x = t.data;
      const a = avg[k].data;
      const v = (nextVelocity[k] = new Float32Array(x.length));
      const w = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const delta = a[i] - x[i];
        v[i] = (velocity ? beta * velocity[k][i] : 0) + delta;
        w[i] = x[i] + eta * v[i];
        // x - x is NaN exactly for NaN and +-Infinity.
        if (v[i] - v[i] !== 0 || w[i] - w[i] !== 0) {
          throw new FedSegError(`fedavgm step overflows at ${t.name}[${i}] (pseudo-gradient ${delta}); the velocity is kept as it was`, { field: 'strategyState' });
        }
      }
      return w;
    });
    this.like ??= global;
    this.velocity = nextVelocity;
    return withData(global, out);
  }

  exportState(): TensorList[] | null {
    return this.velocity && this.like ? [withData(this.like, this.velocity)] : null;
  }

  importState(state: TensorList[]): void {
    if (state.length !== 1) throw new FedSegError(`fedavgm state must hold the velocity only, got ${state.length} parts`, { field: 'strategyState' });
    const bad = firstNonFinite(state[0]);
    if (bad) throw new FedSegError(`fedavgm state holds NaN or Infinity in "${bad}"`, { field: 'strategyState' });
    this.like = state[0];
    this.velocity = state[0].map((t) => new Float32Array(t.data));
  }
}
