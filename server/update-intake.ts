/**
 * The costly part of taking in one site update, kept to one hash and one pass over the weights: the
 * model file is decoded in place (the tensors view the received frame, no 22 MB copy), its SHA-256
 * trailer is checked (that hash is what the audit log records), and validation computes the norm and
 * finiteness together. It runs on a worker thread (server/update-inspector.ts); the caller spools
 * `tensorBytes` and lets the frame go.
 */
import { errorMessage } from '../core/errors.js';
import type { UpdateFrameHeader } from '../core/federation/protocol.js';
import { validateUpdate, type UpdateContext } from '../core/federation/validate-update.js';
import type { ModelConfig } from '../core/model/config.js';
import { decodeModel } from '../core/weights/index.js';

export type InspectedUpdate =
  | { ok: true; sha256: string; norm: number; tensorBytes: Uint8Array }
  | { ok: false; reason: string };

export function inspectUpdate(payload: Uint8Array, header: UpdateFrameHeader, ctx: UpdateContext, modelConfig: ModelConfig, site: string): InspectedUpdate {
  let decoded;
  try {
    decoded = decodeModel(payload, { expectConfig: modelConfig, source: `update from ${site}`, shareMemory: true });
  } catch (err) {
    return { ok: false, reason: `model file rejected: ${errorMessage(err)}` };
  }
  const verdict = validateUpdate(header, decoded.tensors, decoded.architectureHash, ctx);
  if (!verdict.ok) return verdict;
  return { ok: true, sha256: decoded.sha256, norm: verdict.norm, tensorBytes: decoded.tensorBytes };
}
