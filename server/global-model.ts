/**
 * The federation's current global model: its tensors, its file bytes exactly as checkpointed (sent
 * as-is so its hash matches everywhere) and the round that produced it.
 */
import { encodeFrame } from '../core/federation/protocol.js';
import type { TensorList } from '../core/federation/tensors.js';

export class GlobalModel {
  tensors: TensorList = [];
  hash = '';
  bytes: Uint8Array = new Uint8Array();
  /** The last completed round (0: the seeded initial model). */
  round = 0;

  constructor(readonly architectureHash: string) {}

  adopt(round: number, tensors: TensorList, hash: string, bytes: Uint8Array): void {
    this.round = round;
    this.tensors = tensors;
    this.hash = hash;
    this.bytes = bytes;
  }

  /** The model as a binary frame, to train on in `round` or to evaluate after it. */
  frame(purpose: 'train' | 'evaluate', round: number): Buffer {
    return encodeFrame({ kind: 'global', purpose, round, architectureHash: this.architectureHash, sha256: this.hash }, this.bytes);
  }
}
