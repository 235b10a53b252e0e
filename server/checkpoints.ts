/**
 * Global-model checkpoints: one model file per completed round (plus strategy state files for
 * FedAdam/FedYogi), written with fsync + rename so a kill -9 or power cut leaves either the old
 * file or the whole new one. The database records each file's SHA-256; a file whose bytes do not
 * hash to that value is torn or tampered with and is never loaded.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FedSegError } from '../core/errors.js';
import { writeFileAtomicSync } from '../core/fs/atomic-write.js';
import type { ModelConfig } from '../core/model/config.js';
import { decodeModel, encodeModel, type DecodedModel } from '../core/weights/index.js';
import type { TensorList } from '../core/federation/tensors.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface WrittenCheckpoint {
  /** File name relative to the checkpoint folder. */
  file: string;
  /** SHA-256 of the whole file. */
  sha256: string;
  /** The model's own content hash (model file trailer), used as the model's identity in the audit log. */
  modelHash: string;
  /** The encoded model file, exactly as written (also what goes on the wire). */
  bytes: Uint8Array;
}

export class CheckpointStore {
  /** The folder is the server's own: 0700, and every checkpoint in it 0600. */
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  /** Removes temp files left by a write that was interrupted (they were never renamed into place). */
  sweepTemporaryFiles(): string[] {
    const stale = readdirSync(this.dir).filter((f) => f.includes('.tmp-'));
    for (const f of stale) rmSync(join(this.dir, f), { force: true });
    return stale;
  }

  write(round: number, config: ModelConfig, tensors: TensorList, strategyState: TensorList[] | null): WrittenCheckpoint {
    const base = `round-${String(round).padStart(5, '0')}`;
    (strategyState ?? []).forEach((part, i) => this.writeAtomic(`${base}.state${i}.fsm`, encodeModel(config, part, { round, part: i })));
    const bytes = encodeModel(config, tensors, { round });
    const file = `${base}.fsm`;
    this.writeAtomic(file, bytes);
    return { file, sha256: sha256Hex(bytes), modelHash: Buffer.from(bytes.subarray(bytes.length - 32)).toString('hex'), bytes };
  }

  /** Reads a checkpoint, or null when it is missing or its SHA-256 is not `expectedSha256`. */
  read(file: string, expectedSha256: string, config: ModelConfig): { bytes: Uint8Array; model: DecodedModel } | null {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(join(this.dir, file));
    } catch {
      return null;
    }
    if (sha256Hex(bytes) !== expectedSha256) return null;
    try {
      return { bytes, model: decodeModel(bytes, { expectConfig: config, source: file }) };
    } catch {
      return null;
    }
  }

  /** Strategy state files written with a round's checkpoint ([] when the strategy is stateless). */
  readStrategyState(file: string, config: ModelConfig): TensorList[] {
    const base = file.replace(/\.fsm$/, '');
    const parts = readdirSync(this.dir).filter((f) => f.startsWith(`${base}.state`) && f.endsWith('.fsm')).sort();
    return parts.map((f) => {
      try {
        return decodeModel(readFileSync(join(this.dir, f)), { expectConfig: config, source: f }).tensors;
      } catch (err) {
        throw new FedSegError(`strategy state file is unreadable: ${(err as Error).message}`, { file: join(this.dir, f) }, { cause: err });
      }
    });
  }

  private writeAtomic(file: string, bytes: Uint8Array): void {
    writeFileAtomicSync(join(this.dir, file), bytes, { fsync: true, what: 'checkpoint', mode: 0o600 });
  }
}
