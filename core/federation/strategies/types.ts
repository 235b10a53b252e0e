import type { RoundInstructions } from '../protocol.js';
import type { TensorList } from '../tensors.js';

/** One validated site update as a strategy sees it. */
export interface ClientUpdate {
  site: string;
  /** Training cases the update was computed from (n_k). */
  numCases: number;
  weights: TensorList;
}

/**
 * A federated strategy, in the spirit of Flower's Strategy: it decides what each site is asked to
 * do in a round and how the accepted updates become the next global model. Strategies never see
 * rejected updates and must not mutate their inputs.
 */
export interface Strategy {
  readonly name: string;
  /** Per-site instructions for `round`, starting from the federation's base instructions. */
  configureRound(round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions>;
  /** The next global model from the accepted updates of `round` and the current global model. */
  aggregate(round: number, updates: readonly ClientUpdate[], global: TensorList): TensorList;
  /**
   * Server-side optimiser state to checkpoint with the model (FedAdam/FedYogi moments), each part
   * shaped like the model so it is stored in the model file format; null when stateless.
   */
  exportState(): TensorList[] | null;
  importState(state: TensorList[]): void;
}

/** Every site gets the base instructions unchanged (mu as configured). */
export function sameForAll(sites: readonly string[], instructions: RoundInstructions): Map<string, RoundInstructions> {
  return new Map(sites.map((s) => [s, { ...instructions }]));
}

/** Base of the strategies that keep no server state and ask for plain local training (mu 0). */
export abstract class StatelessStrategy implements Strategy {
  abstract readonly name: string;

  configureRound(_round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions> {
    return sameForAll(sites, { ...base, mu: 0 });
  }

  abstract aggregate(round: number, updates: readonly ClientUpdate[], global: TensorList): TensorList;

  exportState(): TensorList[] | null {
    return null;
  }

  importState(): void {}
}
