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
 * Strategies that act on the case-weighted mean (FedAvg, FedProx, FedAvgM, FedAdam, FedYogi): fed
 * one update at a time, so only a float64 running sum is held, never the updates.
 */
export interface MeanAggregation {
  readonly kind: 'mean';
  /** Adds one update with aggregation weight n_k; the caller may reuse `weights` once this returns. */
  add(weights: TensorList, weight: number): void;
  finish(): TensorList;
}

/**
 * Coordinate-wise strategies (median, trimmed mean): fed one block of parameters at a time with
 * every update's values for that block, so memory is bounded by updates x block, not by the model.
 */
export interface CoordinateAggregation {
  readonly kind: 'coordinate';
  /** values[k] holds update k's entries [start, start + length) of tensor `tensor`. */
  addBlock(tensor: number, start: number, values: readonly Float32Array[]): void;
  finish(): TensorList;
}

/** One round's aggregation in progress. Dropping it without finish() discards it and leaves the strategy's state as it was. */
export type RoundAggregation = MeanAggregation | CoordinateAggregation;

/**
 * A federated strategy, in the spirit of Flower's Strategy: it decides what each site is asked to
 * do in a round (configureRound) and how the accepted updates become the next global model
 * (begin -> add/addBlock -> finish). Callers feed updates in a fixed order (sorted by site), so the
 * aggregate does not depend on arrival order. Strategies never see rejected updates and must not
 * mutate their inputs.
 */
export interface Strategy {
  readonly name: string;
  /** Per-site instructions for `round`, starting from the federation's base instructions. */
  configureRound(round: number, sites: readonly string[], base: RoundInstructions): Map<string, RoundInstructions>;
  /** Starts aggregating `round` on top of the current global model. */
  begin(round: number, global: TensorList): RoundAggregation;
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

  abstract begin(round: number, global: TensorList): RoundAggregation;

  exportState(): TensorList[] | null {
    return null;
  }

  importState(): void {}
}
