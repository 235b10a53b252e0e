/**
 * Reads what a site sends and routes it: a hello to the registry, an uploaded update frame to the receiver,
 * approvals, withdrawals, progress, evaluations and resend requests to the round in progress. Each
 * message is checked against the protocol (core/federation/protocol.ts) and against what the site
 * may say now; a bad one is answered and audited, and a connection that keeps sending them is closed.
 */
import { errorMessage } from '../core/errors.js';
import { CLOSE, decodeFrame, decodeJson, SiteMessageSchema, UPLOAD_PATH, type SiteMessage } from '../core/federation/protocol.js';
import type { FederationConfig } from './config.js';
import type { SiteConnection } from './connection.js';
import type { Store } from './db.js';
import type { GlobalModel } from './global-model.js';
import type { RoundState } from './round-state.js';
import type { SiteRegistry } from './site-registry.js';
import type { UpdateReceiver } from './update-receiver.js';

/** Bad messages one connection may send before it is closed (each is answered and audited). */
const MAX_PROTOCOL_ERRORS = 20;

export interface SiteMessageHooks {
  current(): RoundState | null;
  evaluated(round: number, site: string, metrics: Record<string, number>): void;
  /** A site's answer or standing changed what the round waits for. */
  changed(): void;
}

export class SiteMessages {
  /**
   * Connections whose hello is being verified (scrypt runs off the event loop), with the messages that
   * arrived meanwhile (at most the 64 KiB allowed before authentication), handled after it in order.
   */
  private readonly held = new WeakMap<SiteConnection, string[]>();

  constructor(
    private readonly config: FederationConfig, private readonly store: Store, private readonly log: (line: string) => void,
    private readonly parts: { registry: SiteRegistry; receiver: UpdateReceiver; global: GlobalModel },
    private readonly hooks: SiteMessageHooks,
  ) {}

  /** Handles every message the connection sends from now on. */
  listen(c: SiteConnection): void {
    c.on('message', (bytes, isBinary) => {
      if (!c.messageArrived(bytes.length)) return;
      try {
        if (!isBinary) this.text(c, bytes.toString('utf8'));
        else if (!c.authenticated) this.parts.registry.refuse(c, 'frame-before-hello', 'binary frame before authentication');
        else this.protocolError(c, `updates are uploaded by HTTP PUT to ${UPLOAD_PATH} with the session's upload ticket, not sent over the WebSocket`);
      } catch (err) {
        this.failed(c, err);
      }
    });
  }

  private failed(c: SiteConnection, err: unknown): void {
    this.log(`internal error handling a message from ${c.site ?? c.remote}: ${errorMessage(err)}`);
  }

  private text(c: SiteConnection, text: string): void {
    const held = this.held.get(c);
    if (held) return void held.push(text);
    const { registry } = this.parts;
    let message: SiteMessage;
    try {
      message = decodeJson(SiteMessageSchema, text, this.config.maxMessageBytes);
    } catch (err) {
      if (!c.authenticated) return registry.refuse(c, 'bad-hello', `first message must be a valid hello: ${errorMessage(err)}`);
      return this.protocolError(c, errorMessage(err));
    }
    if (!c.authenticated) {
      if (message.type !== 'hello') return registry.refuse(c, 'bad-hello', `first message must be hello, got ${message.type}`);
      return void this.hello(c, message);
    }
    switch (message.type) {
      case 'hello': return this.protocolError(c, 'already authenticated');
      case 'approve':
      case 'decline': return this.decision(c, message.type, message.round, message.attempt, message.type === 'decline' ? message.reason : undefined);
      case 'withdraw': return this.withdraw(c, message.round, message.attempt, message.reason);
      case 'progress': {
        const state = this.hooks.current();
        if (state?.round === message.round && state.pending.has(c.site!)) {
          state.progress.set(c.site!, { epoch: message.epoch, epochs: message.epochs, loss: message.loss });
        }
        return;
      }
      case 'evaluation': return this.evaluation(c, message.round, message.numCases, message.metrics);
      case 'resend-weights': return this.resendWeights(c, message.round);
      case 'secagg-keys':
      case 'secagg-shares':
      case 'secagg-unmask': return this.secureStep(c, message);
      case 'ping': return c.send({ type: 'pong', t: message.t });
      case 'pong': return;
    }
  }

  private async hello(c: SiteConnection, message: Extract<SiteMessage, { type: 'hello' }>): Promise<void> {
    const held: string[] = [];
    this.held.set(c, held);
    try {
      await this.parts.registry.hello(c, message);
    } catch (err) {
      this.failed(c, err);
    } finally {
      this.held.delete(c);
    }
    if (c.authenticated) for (const text of held) this.text(c, text);
  }

  /**
   * Takes in an update frame the site uploaded (server/update-upload.ts). Returns the intake while it
   * runs: the frame's memory is the upload slot's, reused once validation and spooling are done.
   */
  upload(c: SiteConnection, bytes: Uint8Array): Promise<void> | void {
    this.parts.registry.disconnectRemoved();
    if (!c.authenticated || !c.open) return;
    let frame;
    try {
      frame = decodeFrame(bytes, this.config.maxMessageBytes);
      if (frame.header.kind === 'global') throw new Error('sites may only send update frames, got global');
    } catch (err) {
      return this.protocolError(c, errorMessage(err));
    }
    if (frame.header.kind === 'masked-update') return this.parts.receiver.receiveMasked(c, frame.header, frame.payload, bytes.length);
    return this.parts.receiver.receive(c, frame.header, frame.payload, bytes.length);
  }

  private decision(c: SiteConnection, decision: 'approve' | 'decline', round: number, attempt: number, reason?: string): void {
    const state = this.hooks.current();
    const site = c.site!;
    if (!state || state.round !== round || state.attempt !== attempt || state.phase !== 'approval') {
      return this.protocolError(c, `${decision} for round ${round} attempt ${attempt} is not expected now`);
    }
    if (state.responses.has(site)) return this.protocolError(c, `site already answered round ${round}`);
    state.responses.set(site, decision === 'approve' ? 'approved' : 'declined');
    this.store.recordApproval(round, attempt, site, decision === 'approve' ? 'approved' : 'declined', reason ?? null);
    if (decision === 'decline') c.send({ type: 'left-out', round, reason: 'declined by the site' });
    this.hooks.changed();
  }

  /** A participant that cannot deliver leaves the round now, not at the training deadline. */
  private withdraw(c: SiteConnection, round: number, attempt: number, reason: string): void {
    const state = this.hooks.current();
    const site = c.site!;
    if (!state || state.round !== round || state.attempt !== attempt || !state.pending.delete(site)) {
      return this.protocolError(c, `withdraw from round ${round} attempt ${attempt}: the site has no update owed in it`);
    }
    this.store.audit({ actor: site, action: 'left-out', round, detail: { attempt, site, reason: `withdrawn by the site: ${reason}` } });
    this.log(`round ${round}: ${site} withdrew (${reason})`);
    c.send({ type: 'left-out', round, reason: 'withdrawn by the site' });
    this.hooks.changed();
  }

  /**
   * One evaluation per global model this connection was sent to evaluate: no replay for old rounds,
   * no flood. The operator's global metric caps each site's case count (metrics-summary.ts).
   */
  private evaluation(c: SiteConnection, round: number, numCases: number, metrics: Record<string, number>): void {
    if (!c.evaluationsOwed.delete(round)) {
      return this.protocolError(c, `evaluation for round ${round} was not asked for (one per global model sent to this site to evaluate)`);
    }
    this.store.recordEvaluation(round, c.site!, numCases, metrics);
    this.hooks.evaluated(round, c.site!, metrics);
  }

  /**
   * A secure round's key, share and unmasking messages (core/privacy/secagg-server.ts checks each
   * against the step the round is at): only from a site that approved this attempt.
   */
  private secureStep(c: SiteConnection, m: Extract<SiteMessage, { type: 'secagg-keys' | 'secagg-shares' | 'secagg-unmask' }>): void {
    const state = this.hooks.current();
    const site = c.site!;
    if (!state?.secure || state.round !== m.round || state.attempt !== m.attempt || state.responses.get(site) !== 'approved') {
      return this.protocolError(c, `${m.type} for round ${m.round} attempt ${m.attempt} is not expected from this site now`);
    }
    try {
      if (m.type === 'secagg-keys') state.secure.addKeys(site, m.cPublic, m.sPublic);
      else if (m.type === 'secagg-shares') state.secure.addShares(site, m.shares);
      else state.secure.addUnmaskShares(site, m);
    } catch (err) {
      return this.protocolError(c, errorMessage(err));
    }
    this.hooks.changed();
  }

  /** One resend of the weights to train on per round, for a participant that lost them. */
  private resendWeights(c: SiteConnection, round: number): void {
    const state = this.hooks.current();
    if (!state || state.round !== round || !state.pending.has(c.site!)) return this.protocolError(c, `no weights to resend for round ${round}`);
    if (c.resentRound === state.round) return this.protocolError(c, `weights for round ${round} were already resent once`);
    c.resentRound = state.round;
    const { global } = this.parts;
    c.sendFrame(global.frame('train', state.round), global.hash);
  }

  /** Answers a bad message; a connection that keeps sending them is closed, so it cannot fill the audit log. */
  private protocolError(c: SiteConnection, message: string): void {
    const round = this.hooks.current()?.round ?? null;
    c.protocolErrors++;
    if (c.protocolErrors > MAX_PROTOCOL_ERRORS) {
      if (c.protocolErrors > MAX_PROTOCOL_ERRORS + 1) return;
      this.store.audit({ actor: c.actor, action: 'protocol-errors-exceeded', round, detail: { limit: MAX_PROTOCOL_ERRORS, last: message } });
      return c.close(CLOSE.protocolError, `more than ${MAX_PROTOCOL_ERRORS} bad messages`);
    }
    this.store.audit({ actor: c.actor, action: 'protocol-error', round, detail: { error: message } });
    c.send({ type: 'error', code: 'bad-message', message });
  }
}
