/**
 * The federation's current global model: its tensors, its file bytes exactly as checkpointed (sent
 * as-is so its hash matches everywhere) and the round that produced it. The tensors live in one
 * SharedArrayBuffer, so the update inspector's threads (server/update-inspector.ts) read the model
 * every update is compared with without a copy.
 */
import { encodeFrame } from '../core/federation/protocol.js';
import { parameterCount, viewsOf, type TensorList } from '../core/federation/tensors.js';

/** The global model as worker threads see it: float32 values in manifest order (core/federation/tensors.ts viewsOf); `version` is its model hash. */
export interface SharedGlobal {
  version: string;
  buffer: SharedArrayBuffer;
  manifest: { name: string; shape: number[] }[];
}

export class GlobalModel {
  tensors: TensorList = [];
  shared: SharedGlobal = { version: '', buffer: new SharedArrayBuffer(0), manifest: [] };
  hash = '';
  bytes: Uint8Array = new Uint8Array();
  /** The last completed round (0: the seeded initial model). */
  round = 0;
  /**
   * The buffer of the model before the current one, written over by the next adopt: a fresh 22.6 MB
   * buffer each round would cost its page faults again (~0.1 s on a VM), on the event loop. Nothing
   * reads a model two rounds old: an update still being inspected against it is for a round that
   * has ended, and is refused.
   */
  private spare: SharedArrayBuffer | null = null;

  constructor(readonly architectureHash: string) {}

  /** Takes `tensors` as the model (copied into shared memory; the caller's arrays are not kept). */
  adopt(round: number, tensors: TensorList, hash: string, bytes: Uint8Array): void {
    const byteLength = 4 * parameterCount(tensors);
    const buffer = this.spare?.byteLength === byteLength ? this.spare : new SharedArrayBuffer(byteLength);
    this.spare = this.shared.buffer.byteLength === byteLength ? this.shared.buffer : null;
    this.tensors = viewsOf(tensors, new Float32Array(buffer));
    this.tensors.forEach((t, i) => t.data.set(tensors[i].data));
    this.shared = { version: hash, buffer, manifest: tensors.map((t) => ({ name: t.name, shape: t.shape })) };
    this.round = round;
    this.hash = hash;
    this.bytes = bytes;
  }

  /** The model as a binary frame, to train on in `round` or to evaluate after it. */
  frame(purpose: 'train' | 'evaluate', round: number): Buffer {
    return encodeFrame({ kind: 'global', purpose, round, architectureHash: this.architectureHash, sha256: this.hash }, this.bytes);
  }
}
