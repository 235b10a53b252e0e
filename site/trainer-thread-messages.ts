/**
 * What the isolated trainer and its worker thread pass each other. Both ends are this process's own
 * code (structured clone, weights transferred), so these are types, not a validated wire format.
 */
import type { RoundInstructions } from '../core/federation/protocol.js';
import type { TensorList } from '../core/federation/tensors.js';
import type { ModelConfig } from '../core/model/config.js';
import type { TrainerProgress } from './runtime.js';
import type { DataDirTrainerOptions } from './trainer.js';

export type TrainerThreadJob = { options: DataDirTrainerOptions } & (
  | { kind: 'count' }
  | { kind: 'train'; config: ModelConfig; weights: TensorList; instructions: RoundInstructions }
  | { kind: 'evaluate'; config: ModelConfig; weights: TensorList }
);

export type TrainerThreadMessage =
  | { type: 'progress'; progress: TrainerProgress }
  | { type: 'result'; result: unknown; backend: string }
  | { type: 'failed'; message: string };
