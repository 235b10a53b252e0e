import type { UpdateFrameHeader } from './protocol.js';
import { firstNonFinite, l2Distance, manifestMismatch, type TensorList } from './tensors.js';

/** What the server knows when an update arrives. */
export interface UpdateContext {
  /** Round and attempt currently collecting updates, or null when none is. */
  round: number | null;
  attempt: number | null;
  architectureHash: string;
  global: TensorList;
  /** Training cases the site declared when it connected. */
  declaredCases: number;
  /** Training cases the operator registered for the site (hello cannot raise it); null when none was registered. */
  registeredCases: number | null;
  /** True when this site already has an accepted update for the round and attempt the update names. */
  alreadySubmitted: boolean;
  /** True when this site approved the round and was sent the weights. */
  participating: boolean;
}

export type UpdateVerdict = { ok: true; norm: number } | { ok: false; reason: string };

/** Checks that need only the frame header: cheap, done before decoding the weights. */
export function checkUpdateHeader(header: UpdateFrameHeader, ctx: UpdateContext): UpdateVerdict | null {
  if (ctx.alreadySubmitted) return { ok: false, reason: `duplicate update: an update for round ${header.round} attempt ${header.attempt} was already accepted` };
  if (ctx.round === null || header.round !== ctx.round) {
    return { ok: false, reason: ctx.round === null ? `update for round ${header.round} arrived while no round is collecting updates` : `update is for round ${header.round}, but round ${ctx.round} is collecting` };
  }
  if (header.attempt !== ctx.attempt) return { ok: false, reason: `update is for attempt ${header.attempt} of round ${header.round}, current attempt is ${ctx.attempt}` };
  if (!ctx.participating) return { ok: false, reason: `site did not approve round ${header.round} or was left out of it` };
  if (header.architectureHash !== ctx.architectureHash) return { ok: false, reason: `architecture hash ${header.architectureHash.slice(0, 12)} does not match the federation's ${ctx.architectureHash.slice(0, 12)}` };
  const n = header.numCases;
  if (!Number.isInteger(n) || n <= 0) return { ok: false, reason: `numCases must be a positive integer, got ${n}` };
  if (ctx.registeredCases !== null && n > ctx.registeredCases) return { ok: false, reason: `numCases ${n} exceeds the ${ctx.registeredCases} training cases registered for the site` };
  if (n > ctx.declaredCases) return { ok: false, reason: `numCases ${n} exceeds the ${ctx.declaredCases} training cases the site declared` };
  return null;
}

/**
 * Full validation of a decoded update (SPEC section 5): same manifest and shapes as the global
 * model, every value finite; returns the update norm ||w_k - w_global||, which norm clipping uses.
 * One pass over the weights: with a finite global model, the float64 norm is finite exactly when
 * every value is (a float32 difference squared cannot overflow float64), so the search for the
 * offending tensor runs only for a bad update.
 */
export function validateUpdate(header: UpdateFrameHeader, weights: TensorList, weightsArchitectureHash: string, ctx: UpdateContext): UpdateVerdict {
  const headerVerdict = checkUpdateHeader(header, ctx);
  if (headerVerdict) return headerVerdict;
  if (weightsArchitectureHash !== ctx.architectureHash) return { ok: false, reason: `model file's architecture hash ${weightsArchitectureHash.slice(0, 12)} does not match the federation's ${ctx.architectureHash.slice(0, 12)}` };
  const mismatch = manifestMismatch(ctx.global, weights);
  if (mismatch) return { ok: false, reason: `wrong shapes: ${mismatch}` };
  const norm = l2Distance(weights, ctx.global);
  if (!Number.isFinite(norm)) {
    const bad = firstNonFinite(weights);
    return { ok: false, reason: bad ? `tensor "${bad}" holds NaN or Infinity` : 'update norm is not finite' };
  }
  return { ok: true, norm };
}
