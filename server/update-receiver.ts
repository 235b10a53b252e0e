/**
 * Takes in sites' updates for the round collecting them: the header checks, then validation and
 * spooling (server/update-inspector.ts, server/update-spool.ts), then accept or reject. A participant
 * whose update fails validation is out of the round; a duplicate or stale update leaves its
 * standing unchanged.
 */
import { errorMessage } from '../core/errors.js';
import type { MaskedUpdateFrameHeader, UpdateFrameHeader } from '../core/federation/protocol.js';
import { checkUpdateHeader, type UpdateContext } from '../core/federation/validate-update.js';
import { ringFromBytes } from '../core/privacy/fixed-point.js';
import { sha256Hex } from './checkpoints.js';
import type { FederationConfig } from './config.js';
import type { SiteConnection } from './connection.js';
import type { Store } from './db.js';
import type { GlobalModel } from './global-model.js';
import type { RoundState } from './round-state.js';
import type { UpdateInspector } from './update-inspector.js';

export interface ReceiverHooks {
  current(): RoundState | null;
  rejected(round: number, site: string, reason: string): void;
  /** A site's standing in the round changed (returned, or left out). */
  changed(): void;
}

export class UpdateReceiver {
  constructor(
    private readonly config: FederationConfig, private readonly store: Store, private readonly log: (line: string) => void,
    private readonly global: GlobalModel, private readonly inspector: UpdateInspector, private readonly hooks: ReceiverHooks,
  ) {}

  /** Returns the update's intake while it runs (inspection and spooling are asynchronous). */
  receive(c: SiteConnection, header: UpdateFrameHeader, payload: Uint8Array, frameBytes: number): Promise<void> | void {
    const site = c.site!;
    const state = this.hooks.current();
    const training = state?.phase === 'training' ? state : null;
    const collecting = state?.collecting(header.round, header.attempt) ? state : null;
    const ctx: UpdateContext = {
      round: training?.round ?? null,
      attempt: training?.attempt ?? null,
      architectureHash: this.global.architectureHash,
      global: this.global.tensors,
      declaredCases: c.declaredTrain,
      registeredCases: c.registeredCases,
      alreadySubmitted: this.store.hasAcceptedUpdate(header.round, header.attempt, site) || (collecting?.receiving.has(site) ?? false),
      participating: state?.participants.has(site) ?? false,
    };
    // In a secure round the server must never hold one site's update in the clear.
    if (state?.secure) return this.reject(c, header, payload, frameBytes, 'this round is securely aggregated: only a masked input is accepted');
    const early = checkUpdateHeader(header, ctx);
    if (early && !early.ok) return this.reject(c, header, payload, frameBytes, early.reason);
    // The header checks passed, so this is the round collecting now and the site one of its participants.
    return this.take(c, collecting!, header, payload, frameBytes, ctx);
  }

  /**
   * Validates an update on an inspector thread (server/update-inspector.ts), writes it to the round's spool and accepts it,
   * unless the round moved on (its deadline passed, the site was removed) meanwhile. Only the norm
   * and counts are kept; the frame is released once written.
   */
  private async take(c: SiteConnection, state: RoundState, header: UpdateFrameHeader, payload: Uint8Array, frameBytes: number, ctx: UpdateContext): Promise<void> {
    const site = c.site!;
    state.receiving.add(site);
    let inspected;
    try {
      inspected = await this.inspector.inspect(payload, header, ctx, this.global.shared, site);
      if (inspected.ok) await state.spool.write(site, inspected.tensorBytes);
    } catch (err) {
      state.receiving.delete(site);
      this.log(`round ${header.round}: cannot store the update from ${site}: ${errorMessage(err)}`);
      return this.reject(c, header, payload, frameBytes, 'the server could not store the update');
    }
    state.receiving.delete(site);
    if (!inspected.ok) return this.reject(c, header, payload, frameBytes, inspected.reason);
    const { norm, sha256 } = inspected;
    if (this.hooks.current() !== state || state.phase !== 'training' || !state.pending.has(site)) {
      state.spool.remove(site);
      return this.reject(c, header, payload, frameBytes, `round ${header.round} stopped collecting updates while this one was being stored`);
    }
    state.accepted.set(site, { site, numCases: header.numCases, registeredCases: c.registeredCases, norm, metrics: header.metrics });
    state.pending.delete(site);
    this.store.recordUpdate({ round: header.round, attempt: header.attempt, site, numCases: header.numCases, norm, bytes: frameBytes, sha256, status: 'accepted', reason: null, metrics: header.metrics });
    c.send({ type: 'update-accepted', round: header.round, norm });
    this.log(`round ${header.round}: update from ${site} accepted (${header.numCases} cases, norm ${norm.toPrecision(4)})`);
    this.hooks.changed();
  }

  /** A secure round's masked input: added to the round's running sum at once (core/privacy/secagg-server.ts), never kept. */
  receiveMasked(c: SiteConnection, header: MaskedUpdateFrameHeader, payload: Uint8Array, frameBytes: number): void {
    const site = c.site!;
    const state = this.hooks.current();
    const secure = state?.secure;
    let reason: string | null = null;
    if (!state || !secure) reason = 'no securely aggregated round is in progress';
    else if (!state.collecting(header.round, header.attempt)) reason = `round ${header.round} attempt ${header.attempt} is not collecting inputs now`;
    else if (!state.pending.has(site)) reason = 'this site owes no masked input in this round';
    else if (header.architectureHash !== this.global.architectureHash) reason = 'architecture hash does not match the federation model';
    else if (payload.byteLength !== 4 * header.elements) reason = `the payload holds ${payload.byteLength} bytes for ${header.elements} elements`;
    else {
      try {
        secure.addMaskedInput(site, ringFromBytes(payload));
      } catch (err) {
        reason = errorMessage(err);
      }
    }
    if (reason !== null || !state) return this.reject(c, header, payload, frameBytes, reason ?? 'no round');
    state.pending.delete(site);
    this.store.recordUpdate({ round: header.round, attempt: header.attempt, site, numCases: null, norm: null, bytes: frameBytes, sha256: sha256Hex(payload), status: 'accepted', reason: null });
    c.send({ type: 'update-accepted', round: header.round });
    this.log(`round ${header.round}: masked input from ${site} added to the sum`);
    this.hooks.changed();
  }

  /**
   * Records and answers a refused update. The audit log names the update by the SHA-256 of its
   * model bytes, hashed here only on refusal.
   */
  private reject(c: SiteConnection, header: UpdateFrameHeader | MaskedUpdateFrameHeader, payload: Uint8Array, frameBytes: number, reason: string): void {
    const site = c.site!;
    const state = this.hooks.current();
    const numCases = header.kind === 'update' && Number.isFinite(header.numCases) ? header.numCases : null;
    this.store.recordUpdate({ round: header.round, attempt: header.attempt, site, numCases, norm: null, bytes: frameBytes, sha256: sha256Hex(payload), status: 'rejected', reason });
    c.send({ type: 'update-rejected', round: header.round, reason });
    this.hooks.rejected(header.round, site, reason);
    this.log(`round ${header.round}: update from ${site} rejected: ${reason}`);
    if (state?.collecting(header.round, header.attempt) && state.pending.has(site) && !state.receiving.has(site)) {
      state.pending.delete(site);
      state.participants.delete(site);
      c.send({ type: 'left-out', round: header.round, reason: `update rejected: ${reason}` });
      this.hooks.changed();
    }
  }
}
