/**
 * The costly part of taking in one site update, kept to one hash and one pass over the weights: the
 * model file is decoded in place (the tensors view the received frame, no 22 MB copy), its SHA-256
 * trailer is checked once (that hash is what the audit log records), and validation computes the
 * norm and finiteness together. The hash runs in slices with the event loop free between them, so
 * other sites' messages and heartbeats are not held up by a large update. The caller spools
 * `tensorBytes` and lets the frame go.
 */
import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { errorMessage } from '../core/errors.js';
import type { UpdateFrameHeader } from '../core/federation/protocol.js';
import { validateUpdate, type UpdateContext } from '../core/federation/validate-update.js';
import type { ModelConfig } from '../core/model/config.js';
import { decodeModel } from '../core/weights/index.js';

/** Bytes hashed per turn of the event loop (about 3 ms of SHA-256). */
const HASH_SLICE_BYTES = 4 * 1024 * 1024;
/** The model file's SHA-256 trailer (core/weights/codec.ts). */
const TRAILER_BYTES = 32;

export type InspectedUpdate =
  | { ok: true; sha256: string; norm: number; tensorBytes: Uint8Array }
  | { ok: false; reason: string };

export async function inspectUpdate(payload: Uint8Array, header: UpdateFrameHeader, ctx: UpdateContext, modelConfig: ModelConfig, site: string): Promise<InspectedUpdate> {
  const hash = createHash('sha256');
  const end = Math.max(0, payload.length - TRAILER_BYTES);
  for (let at = 0; at < end; at += HASH_SLICE_BYTES) {
    hash.update(payload.subarray(at, Math.min(end, at + HASH_SLICE_BYTES)));
    await nextTurn();
  }
  let decoded;
  try {
    decoded = decodeModel(payload, { expectConfig: modelConfig, source: `update from ${site}`, shareMemory: true, contentsSha256: hash.digest('hex') });
  } catch (err) {
    return { ok: false, reason: `model file rejected: ${errorMessage(err)}` };
  }
  const verdict = validateUpdate(header, decoded.tensors, decoded.architectureHash, ctx);
  if (!verdict.ok) return verdict;
  return { ok: true, sha256: decoded.sha256, norm: verdict.norm, tensorBytes: decoded.tensorBytes };
}
