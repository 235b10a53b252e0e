/**
 * Which sites are connected: a connection becomes a site by a valid `hello`, is brought up to date
 * with the round in progress (resync), is replaced by the site's next connection, dropped when the
 * operator removes the site or it falls silent, and forgotten when it closes. Refusals before
 * authentication count toward the remote address's lockout.
 */
import { CLOSE, PROTOCOL_VERSION, type RefusalCode, type SiteMessage } from '../core/federation/protocol.js';
import type { FederationConfig } from './config.js';
import type { SiteConnection } from './connection.js';
import type { Store } from './db.js';
import type { FailureLimiter } from './rate-limit.js';
import type { RoundSender } from './round-sender.js';
import type { RoundState } from './round-state.js';
import { hashSecret, isLegacyHash, tokenLocator, verifySecretAsync } from './tokens.js';
import { UploadTickets } from './update-upload.js';

const AUTH_TIMEOUT_MS = 10_000;

/** What the registry needs to know of, and tell, the rest of the federation. */
export interface RegistryHooks {
  /** The round in progress, if any. */
  current(): RoundState | null;
  /** Set once every round is done: a site that connects then is told so. */
  finishedAfter(): number | null;
  connected(site: string): void;
  disconnected(site: string): void;
  /** The operator removed the site: it takes no further part. */
  removed(site: string): void;
}

export class SiteRegistry {
  readonly connections = new Set<SiteConnection>();
  private readonly bySite = new Map<string, SiteConnection>();
  /** What authorises each session's update uploads (server/update-upload.ts). */
  readonly uploadTickets = new UploadTickets();
  /** Connections whose hello's token is being verified. */
  private readonly verifying = new WeakSet<SiteConnection>();

  constructor(
    private readonly config: FederationConfig, private readonly store: Store, private readonly log: (line: string) => void,
    /** Failed hellos count toward the remote address's lockout (shared with the operator API). */
    private readonly authFailures: FailureLimiter,
    private readonly sender: RoundSender, private readonly hooks: RegistryHooks,
  ) {}

  /** The connection a site is authenticated on, if it is online. */
  get(site: string): SiteConnection | undefined {
    return this.bySite.get(site);
  }

  /** Authenticated connections, one per online site. */
  online(): SiteConnection[] {
    return [...this.bySite.values()];
  }

  onlineSites(): string[] {
    return [...this.bySite.keys()].sort();
  }

  /** Takes on a new connection: it has AUTH_TIMEOUT_MS to authenticate. */
  attach(c: SiteConnection): void {
    this.connections.add(c);
    const authTimer = setTimeout(() => {
      if (!c.authenticated && !this.verifying.has(c)) this.refuse(c, 'hello-timeout', 'no hello within 10 s');
    }, AUTH_TIMEOUT_MS);
    c.on('pre-auth-overflow', (reason) => this.dropUnauthenticated(c, reason));
    c.on('socket-error', ({ message, oversized }) => {
      if (!c.authenticated && !this.authFailures.fail(c.ip).audit) return;
      this.store.audit({ actor: c.actor, action: oversized ? 'oversized-frame' : 'connection-error', round: this.round, detail: { error: message, limit: this.config.maxMessageBytes } });
    });
    c.on('closed', (code) => {
      clearTimeout(authTimer);
      this.connections.delete(c);
      this.uploadTickets.revoke(c);
      if (c.site && this.bySite.get(c.site) === c) {
        this.bySite.delete(c.site);
        this.store.audit({ actor: c.site, action: 'site-disconnected', round: this.round, detail: { code, phase: this.hooks.current()?.phase ?? null } });
        this.hooks.disconnected(c.site);
      }
    });
  }

  /** Verifies the site token with scrypt on the thread pool, so a thousand sites reconnecting do not hold up the event loop. */
  async hello(c: SiteConnection, hello: Extract<SiteMessage, { type: 'hello' }>): Promise<void> {
    if (hello.protocol !== PROTOCOL_VERSION) return this.refuse(c, 'protocol-version', `protocol version ${hello.protocol} is not supported (server speaks ${PROTOCOL_VERSION})`);
    const site = this.store.siteByTokenLocator(tokenLocator(hello.token));
    this.verifying.add(c);
    const ok = site ? await verifySecretAsync(hello.token, site.token_hash) : false;
    this.verifying.delete(c);
    if (!c.open) return;
    if (!site || !ok) return this.refuse(c, 'unknown-token', 'unknown or revoked site token');
    if (isLegacyHash(site.token_hash)) this.store.setSiteTokenHash(site.name, hashSecret(hello.token));
    const previous = this.bySite.get(site.name);
    if (previous && previous !== c) {
      this.bySite.delete(site.name);
      previous.close(CLOSE.replaced, 'replaced by a newer connection');
    }
    c.site = site.name;
    c.declaredTrain = hello.cases.train;
    c.registeredCases = site.registered_cases;
    c.declaredValidation = hello.cases.validation;
    this.bySite.set(site.name, c);
    this.store.siteSeen(site.name, hello.cases.train, hello.cases.validation);
    this.store.audit({ actor: site.name, action: 'site-connected', round: this.round, detail: { remote: c.remote, cases: hello.cases, software: hello.software ?? null } });
    c.send({ type: 'welcome', protocol: PROTOCOL_VERSION, site: site.name, heartbeatMs: this.config.heartbeatS * 1000, maxMessageBytes: this.config.maxMessageBytes, architectureHash: this.sender.architectureHash, uploadTicket: this.uploadTickets.issue(c) });
    this.hooks.connected(site.name);
    this.resync(c);
  }

  /**
   * Refuses an unauthenticated connection. Each refusal counts toward its address's lockout; only
   * those up to the lockout are audited, so a flood of bad hellos cannot fill the audit log.
   */
  refuse(c: SiteConnection, code: RefusalCode, reason: string): void {
    const { audit, blocked } = this.authFailures.fail(c.ip);
    if (audit) this.store.audit({ actor: `unauthenticated ${c.remote}`, action: 'auth-failed', detail: { code, reason, ...(blocked ? { lockedOutForS: this.authFailures.retryAfterS(c.ip) } : {}) } });
    c.send({ type: 'auth-failed', code, reason });
    c.close(CLOSE.authFailed, code);
  }

  /**
   * Disconnects sites the operator removed (`fedseg server remove-site` runs in another process and
   * only writes the DB): checked every heartbeat, before accepting an update and before aggregating,
   * and only re-reading the site table when another process wrote to the DB meanwhile.
   */
  disconnectRemoved(): void {
    if (!this.store.changedElsewhere()) return;
    const active = new Set(this.store.sites().map((s) => s.name));
    for (const c of this.connections) {
      if (!c.site || c.revoked || active.has(c.site)) continue;
      const site = c.site;
      c.revoked = true;
      this.store.audit({ actor: 'server', action: 'site-revoked-disconnected', round: this.round, detail: { site } });
      this.log(`site ${site} was removed by the operator; disconnecting it`);
      c.send({ type: 'auth-failed', code: 'site-removed', reason: 'site removed by the operator' });
      c.close(CLOSE.authFailed, 'site-removed');
      if (this.bySite.get(site) === c) this.bySite.delete(site);
      this.hooks.removed(site);
    }
  }

  /** Pings every site; one silent for three heartbeats is dropped. */
  heartbeat(): void {
    this.disconnectRemoved();
    const now = Date.now();
    for (const c of this.connections) {
      const silentMs = c.heartbeat(now, 3 * this.config.heartbeatS * 1000);
      if (silentMs !== null) this.store.audit({ actor: c.site!, action: 'heartbeat-timeout', round: this.round, detail: { silentMs } });
    }
  }

  closeAll(): void {
    for (const c of this.connections) c.close(CLOSE.serverShutdown, 'server shutting down');
  }

  /** Cuts off a connection that misbehaves before authenticating (e.g. sends megabytes), without reading on. */
  private dropUnauthenticated(c: SiteConnection, reason: string): void {
    const { audit } = this.authFailures.fail(c.ip);
    if (audit) this.store.audit({ actor: `unauthenticated ${c.remote}`, action: 'pre-auth-limit', detail: { reason } });
    c.terminate();
  }

  /** Brings a (re)connected site up to date with the round in progress. */
  private resync(c: SiteConnection): void {
    const state = this.hooks.current();
    const site = c.site!;
    const finished = this.hooks.finishedAfter();
    if (finished !== null) return c.send({ type: 'done', rounds: finished });
    if (!state) return;
    if (state.phase === 'approval') {
      if (!state.responses.has(site)) this.sender.announce(c, state);
      return;
    }
    // A secure round's key exchange goes on; whether this site is still in it shows when it ends.
    if (state.phase === 'key-exchange' && state.responses.get(site) === 'approved') return;
    const unmasking = state.phase === 'unmasking' ? state.secure?.unmasking : null;
    if (unmasking?.survivors.includes(site) && !state.secure!.answered(site)) {
      return c.send({ type: 'secagg-unmask-request', round: state.round, attempt: state.attempt, ...unmasking });
    }
    if (state.pending.has(site)) {
      this.store.audit({ actor: site, action: 'site-resumed', round: state.round, detail: { attempt: state.attempt } });
      this.sender.announce(c, state);
      this.sender.trainWeights(c, state.round);
      return;
    }
    if (!state.participants.has(site)) c.send({ type: 'left-out', round: state.round, reason: `round ${state.round} is past its approval phase` });
  }

  private get round(): number | null {
    return this.hooks.current()?.round ?? null;
  }
}
