import { FedSegError } from '../../errors.js';
import type { TensorList } from '../tensors.js';
import { parameterCount, withData } from '../tensors.js';
import { StatelessStrategy, type CoordinateAggregation } from './types.js';

/**
 * Coordinate-wise robust aggregation (Yin et al. 2018): for every parameter, sort the k sites'
 * values and combine the middle ones. Unweighted by design: a site cannot buy influence by
 * claiming more cases. Fed block by block, so the caller decides how many values are in memory.
 */
function coordinateAggregation(like: TensorList, combine: (sorted: Float64Array) => number): CoordinateAggregation {
  const out = like.map((t) => new Float32Array(t.data.length));
  const total = parameterCount(like);
  let filled = 0;
  let column = new Float64Array(0);
  return {
    kind: 'coordinate',
    addBlock(tensor, start, values) {
      const k = values.length;
      if (k === 0) throw new FedSegError('robust aggregation needs at least one update');
      const target = out[tensor];
      const length = values[0].length;
      if (!target || start < 0 || start + length > target.length || values.some((v) => v.length !== length)) {
        throw new FedSegError(`block [${start}, ${start + length}) of tensor #${tensor} does not fit the model`, { field: 'weights' });
      }
      if (column.length !== k) column = new Float64Array(k);
      for (let i = 0; i < length; i++) {
        for (let s = 0; s < k; s++) column[s] = values[s][i];
        column.sort();
        target[start + i] = combine(column);
      }
      filled += length;
    },
    finish() {
      if (filled !== total) throw new FedSegError(`robust aggregation was given ${filled} of the model's ${total} parameters`, { field: 'weights' });
      return withData(like, out);
    },
  };
}

export class CoordinateMedian extends StatelessStrategy {
  readonly name = 'median';

  begin(_round: number, global: TensorList): CoordinateAggregation {
    return coordinateAggregation(global, (v) => {
      const mid = v.length >> 1;
      return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
    });
  }
}

/** Drops the floor(beta * k) largest and smallest values per coordinate and averages the rest. */
export class TrimmedMean extends StatelessStrategy {
  readonly name = 'trimmed-mean';

  constructor(private readonly beta: number) {
    super();
    if (!(beta >= 0 && beta < 0.5)) throw new FedSegError(`trimmed-mean beta must be in [0, 0.5), got ${beta}`, { field: 'strategy.beta' });
  }

  begin(_round: number, global: TensorList): CoordinateAggregation {
    const beta = this.beta;
    return coordinateAggregation(global, (v) => {
      const trim = Math.floor(beta * v.length);
      if (v.length - 2 * trim < 1) throw new FedSegError(`trimmed mean with beta ${beta} leaves no update of ${v.length}`, { field: 'strategy.beta' });
      let sum = 0;
      for (let i = trim; i < v.length - trim; i++) sum += v[i];
      return sum / (v.length - 2 * trim);
    });
  }
}
