import { FedSegError } from '../../errors.js';
import type { TensorList } from '../tensors.js';
import { withData } from '../tensors.js';
import { StatelessStrategy, type ClientUpdate } from './types.js';

/**
 * Coordinate-wise robust aggregation (Yin et al. 2018): for every parameter, sort the k sites'
 * values and combine the middle ones. Unweighted by design: a site cannot buy influence by
 * claiming more cases.
 */
function coordinateWise(updates: readonly ClientUpdate[], like: TensorList, combine: (sorted: Float64Array) => number): TensorList {
  const k = updates.length;
  if (k === 0) throw new FedSegError('robust aggregation needs at least one update');
  const column = new Float64Array(k);
  return withData(like, like.map((t, ti) => {
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) {
      for (let s = 0; s < k; s++) column[s] = updates[s].weights[ti].data[i];
      column.sort();
      out[i] = combine(column);
    }
    return out;
  }));
}

export function coordinateMedian(updates: readonly ClientUpdate[], like: TensorList): TensorList {
  return coordinateWise(updates, like, (v) => {
    const mid = v.length >> 1;
    return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  });
}

/** Drops the floor(beta * k) largest and smallest values per coordinate and averages the rest. */
export function trimmedMean(updates: readonly ClientUpdate[], like: TensorList, beta: number): TensorList {
  const trim = Math.floor(beta * updates.length);
  if (updates.length - 2 * trim < 1) throw new FedSegError(`trimmed mean with beta ${beta} leaves no update of ${updates.length}`, { field: 'strategy.beta' });
  return coordinateWise(updates, like, (v) => {
    let sum = 0;
    for (let i = trim; i < v.length - trim; i++) sum += v[i];
    return sum / (v.length - 2 * trim);
  });
}

export class CoordinateMedian extends StatelessStrategy {
  readonly name = 'median';

  aggregate(_round: number, updates: readonly ClientUpdate[], global: TensorList): TensorList {
    return coordinateMedian(updates, global);
  }
}

export class TrimmedMean extends StatelessStrategy {
  readonly name = 'trimmed-mean';

  constructor(private readonly beta: number) {
    super();
    if (!(beta >= 0 && beta < 0.5)) throw new FedSegError(`trimmed-mean beta must be in [0, 0.5), got ${beta}`, { field: 'strategy.beta' });
  }

  aggregate(_round: number, updates: readonly ClientUpdate[], global: TensorList): TensorList {
    return trimmedMean(updates, global, this.beta);
  }
}
