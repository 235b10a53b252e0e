import { FedSegError } from '../../errors.js';
import type { TensorList } from '../tensors.js';
import type { ClientUpdate, Strategy } from './types.js';

/** Parameters per block when coordinate-wise strategies read updates already in memory. */
const IN_MEMORY_BLOCK = 65_536;

/**
 * Aggregates updates that are all in memory (the in-process experiment, tests) through the same
 * begin -> add/addBlock -> finish path the server streams from disk, in the order given.
 */
export function aggregateInMemory(strategy: Strategy, round: number, updates: readonly ClientUpdate[], global: TensorList, blockSize = IN_MEMORY_BLOCK): TensorList {
  if (updates.length === 0) throw new FedSegError(`${strategy.name} needs at least one update`);
  const aggregation = strategy.begin(round, global);
  if (aggregation.kind === 'mean') {
    for (const u of updates) aggregation.add(u.weights, u.numCases);
    return aggregation.finish();
  }
  global.forEach((t, tensor) => {
    for (let start = 0; start < t.data.length; start += blockSize) {
      const end = Math.min(start + blockSize, t.data.length);
      aggregation.addBlock(tensor, start, updates.map((u) => u.weights[tensor].data.subarray(start, end)));
    }
  });
  return aggregation.finish();
}
