import { FedSegError } from '../../errors.js';
import type { RoundInstructions } from '../protocol.js';
import type { TensorList } from '../tensors.js';
import { firstNonFinite, manifestMismatch, withData } from '../tensors.js';
import { meanAggregation } from './fedavg.js';
import { sameForAll, type MeanAggregation, type Strategy } from './types.js';

export interface FedOptParams {
  /** Server learning rate. */
  eta: number;
  beta1: number;
  beta2: number;
  /** Adaptivity floor: v starts at tau^2 and the step divides by sqrt(v) + tau. */
  tau: number;
}

/**
 * Server-side adaptive optimisers of Reddi et al. 2021 ("Adaptive Federated Optimization"): the
 * case-weighted average of the updates minus the global model is a pseudo-gradient, which FedAdam
 * or FedYogi applies with server moments m and v. The moments are exported with each checkpoint
 * so a restarted server continues with the same optimiser state.
 */
export class FedOpt implements Strategy {
  private m: Float32Array[] | null = null;
  private v: Float32Array[] | null = null;
  /** Manifest the moments follow (the global model's). */
  private like: TensorList | null = null;

  constructor(readonly name: 'fedadam' | 'fedyogi', private readonly p: FedOptParams) {
    for (const [key, value] of Object.entries(p)) {
      if (!(value > 0) || !Number.isFinite(value)) throw new FedSegError(`${name} ${key} must be positive, got ${value}`, { field: `strategy.${key}` });
    }
    if (p.beta1 >= 1 || p.beta2 >= 1) throw new FedSegError(`${name} betas must be < 1`, { field: 'strategy.beta1' });
  }

  configureRound(_round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions> {
    return sameForAll(sites, { ...base, mu: 0 });
  }

  begin(_round: number, global: TensorList): MeanAggregation {
    return meanAggregation(global, (avg) => this.step(avg, global));
  }

  /**
   * One server step. The moments are computed into new arrays and adopted only when every moment
   * and every new weight is finite, so an overflowing pseudo-gradient (e.g. d^2 of 1e21 in float32)
   * throws, leaves the optimiser state as it was, and is never checkpointed.
   */
  private step(avg: TensorList, global: TensorList): TensorList {
    const { eta, beta1, beta2, tau } = this.p;
    if (this.like && manifestMismatch(this.like, global)) throw new FedSegError(`${this.name} state does not match the global model`, { field: 'strategyState' });
    const m = this.m ?? global.map((t) => new Float32Array(t.data.length));
    const v = this.v ?? global.map((t) => new Float32Array(t.data.length).fill(tau * tau));
    const nextM: Float32Array[] = [];
    const nextV: Float32Array[] = [];
    const out = global.map((t, k) => {
      const x = t.data;
      const a = avg[k].data;
      const mk = (nextM[k] = new Float32Array(x.length));
      const vk = (nextV[k] = new Float32Array(x.length));
      const wk = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const delta = a[i] - x[i];
        const d2 = delta * delta;
        mk[i] = beta1 * m[k][i] + (1 - beta1) * delta;
        vk[i] = this.name === 'fedadam'
          ? beta2 * v[k][i] + (1 - beta2) * d2
          : v[k][i] - (1 - beta2) * d2 * Math.sign(v[k][i] - d2);
        wk[i] = x[i] + eta * mk[i] / (Math.sqrt(vk[i]) + tau);
        // x - x is NaN exactly for NaN and +-Infinity.
        if (mk[i] - mk[i] !== 0 || vk[i] - vk[i] !== 0 || wk[i] - wk[i] !== 0) {
          throw new FedSegError(`${this.name} step overflows at ${t.name}[${i}] (pseudo-gradient ${delta}); the optimiser state is kept as it was`, { field: 'strategyState' });
        }
      }
      return wk;
    });
    this.like ??= global;
    this.m = nextM;
    this.v = nextV;
    return withData(global, out);
  }

  exportState(): TensorList[] | null {
    if (!this.m || !this.v || !this.like) return null;
    return [withData(this.like, this.m), withData(this.like, this.v)];
  }

  importState(state: TensorList[]): void {
    if (state.length !== 2) throw new FedSegError(`${this.name} state must hold the moments m and v, got ${state.length} parts`, { field: 'strategyState' });
    const mismatch = manifestMismatch(state[0], state[1]);
    if (mismatch) throw new FedSegError(`${this.name} state is inconsistent: ${mismatch}`, { field: 'strategyState' });
    const bad = firstNonFinite(state[0]) ?? firstNonFinite(state[1]);
    if (bad) throw new FedSegError(`${this.name} state holds NaN or Infinity in "${bad}"`, { field: 'strategyState' });
    this.like = state[0];
    this.m = state[0].map((t) => new Float32Array(t.data));
    this.v = state[1].map((t) => new Float32Array(t.data));
  }
}
