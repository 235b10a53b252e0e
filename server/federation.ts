/**
 * The aggregation server's federation logic (SPEC section 5): authenticates sites, runs the round
 * loop (announce -> approvals -> weights out -> updates in -> validate -> aggregate -> checkpoint),
 * and records every step in the store before acting on it, so a restart resumes from the last
 * completed round. Transport-agnostic apart from the SiteConnection it is handed.
 */
import { EventEmitter } from 'node:events';
import type { RawData } from 'ws';
import { errorMessage, FedSegError } from '../core/errors.js';
import {
  CLOSE, decodeFrame, decodeJson, encodeFrame, PROTOCOL_VERSION, SiteMessageSchema, UPLOAD_PATH,
  type Announce, type RefusalCode, type RoundInstructions, type SiteMessage, type UpdateFrameHeader,
} from '../core/federation/protocol.js';
import { planBounds, type BoundPlan, type UpdateToBound } from '../core/federation/bound-updates.js';
import { roundSeed } from '../core/federation/round-seed.js';
import { createStrategy, type Strategy } from '../core/federation/strategies/index.js';
import { firstNonFinite, l2Distance, type TensorList } from '../core/federation/tensors.js';
import { checkUpdateHeader, type UpdateContext } from '../core/federation/validate-update.js';
import { initialWeights } from '../core/model/init.js';
import { architectureHash } from '../core/weights/index.js';
import { CheckpointStore, sha256Hex } from './checkpoints.js';
import type { FederationConfig } from './config.js';
import type { SiteConnection } from './connection.js';
import type { Store } from './db.js';
import type { FailureLimiter } from './rate-limit.js';
import { hashSecret, isLegacyHash, tokenLocator, verifySecretAsync } from './tokens.js';
import { inspectUpdate } from './update-intake.js';
import { aggregateSpooled, type RoundSpool, type UpdateSpool } from './update-spool.js';
import { UploadTickets } from './update-upload.js';

const AUTH_TIMEOUT_MS = 10_000;
/** Bad messages one connection may send before it is closed (each is answered and audited). */
const MAX_PROTOCOL_ERRORS = 20;
/** Shown to a site admin before approval: everything that leaves the site if they approve. */
const LEAVES_SITE = [
  'the locally trained model weights (same architecture as the global model)',
  'the number of training cases used',
  'aggregate training and validation metrics (loss, Dice per region)',
];

export type FederationState = 'starting' | 'running' | 'finished' | 'failed' | 'stopped';
type Phase = 'approval' | 'training' | 'aggregating';

interface AcceptedUpdate extends UpdateToBound {
  metrics: Record<string, number>;
}

interface RoundState {
  round: number;
  attempt: number;
  phase: Phase;
  instructions: Map<string, RoundInstructions>;
  approvalDeadline: number;
  trainingDeadline: number;
  responses: Map<string, 'approved' | 'declined'>;
  /** Approvers that were sent the weights and have not yet returned or been left out. */
  pending: Set<string>;
  participants: Set<string>;
  /** Validated updates whose weights are in `spool`; only their norms and counts stay in memory. */
  accepted: Map<string, AcceptedUpdate>;
  spool: RoundSpool;
  /** Sites whose update passed the header checks and is being validated or written to the spool. */
  receiving: Set<string>;
  /** Latest training progress each participant reported (for the operator view). */
  progress: Map<string, { epoch: number; epochs: number; loss?: number }>;
}

export interface FederationEvents {
  'site-connected': [site: string];
  'site-disconnected': [site: string];
  'round-started': [round: number, attempt: number];
  'round-completed': [round: number, sites: string[], modelHash: string];
  'round-abandoned': [round: number, attempt: number, reason: string];
  'update-rejected': [round: number, site: string, reason: string];
  evaluation: [round: number, site: string, metrics: Record<string, number>];
  /** The loop is (still) blocked on a condition; server/waiting.ts says on what. */
  waiting: [];
  finished: [state: FederationState];
}

export class Federation extends EventEmitter<FederationEvents> {
  state: FederationState = 'starting';
  readonly architectureHash: string;
  readonly strategy: Strategy;
  readonly connections = new Set<SiteConnection>();
  /** What authorises each session's update uploads (server/update-upload.ts). */
  readonly uploadTickets = new UploadTickets();
  /**
   * Connections whose hello's token is being verified (scrypt, off the event loop), with the messages
   * that arrived meanwhile (at most the 64 KiB allowed before authentication), handled after it.
   */
  private readonly verifying = new WeakMap<SiteConnection, string[]>();
  private readonly bySite = new Map<string, SiteConnection>();
  private global!: TensorList;
  private globalHash = '';
  /** The global model's file bytes, exactly as checkpointed; sent as-is so its hash matches everywhere. */
  private globalBytes: Uint8Array = new Uint8Array();
  private lastCompleted = 0;
  private current: RoundState | null = null;
  private wake: (() => void) | null = null;
  private stopping = false;
  private heartbeat: NodeJS.Timeout | null = null;
  /** Sites sent the final global model to evaluate, until each reports. */
  private awaitingFinalEval = new Set<string>();
  readonly done: Promise<FederationState>;
  private resolveDone!: (s: FederationState) => void;

  constructor(
    readonly config: FederationConfig, readonly store: Store, readonly checkpoints: CheckpointStore, private readonly log: (line: string) => void,
    /** Failed hellos count toward the remote address's lockout (shared with the operator API). */
    private readonly authFailures: FailureLimiter,
    /** Where accepted updates wait for aggregation (the server's data folder). */
    private readonly spool: UpdateSpool,
  ) {
    super();
    this.architectureHash = architectureHash(config.modelConfig);
    this.strategy = createStrategy(config.strategy);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get round(): number | null {
    return this.current?.round ?? null;
  }

  get completedRounds(): number {
    return this.lastCompleted;
  }

  onlineSites(): string[] {
    return [...this.bySite.keys()].sort();
  }

  /** Snapshot of the round in progress for the operator view. */
  currentRound() {
    const c = this.current;
    if (!c) return null;
    return {
      round: c.round, attempt: c.attempt, phase: c.phase,
      deadline: new Date(c.phase === 'approval' ? c.approvalDeadline : c.trainingDeadline).toISOString(),
      approvals: Object.fromEntries(c.responses),
      participants: [...c.participants].sort(),
      returned: [...c.accepted.keys()].sort(),
      progress: Object.fromEntries(c.progress),
    };
  }

  /** Traffic on each site's current connection (for the operator view). */
  connectionStats(): Record<string, { connectedAt: string; bytesSent: number; bytesReceived: number }> {
    return Object.fromEntries([...this.bySite].map(([site, c]) => [site, { connectedAt: new Date(c.connectedAt).toISOString(), bytesSent: c.bytesSent, bytesReceived: c.bytesReceived }]));
  }

  // ---------------------------------------------------------------- start-up and recovery

  /** Restores the last completed round whose checkpoint verifies, or creates round 0 from the seed. */
  recover(): void {
    const config = this.config;
    const storedConfig = this.store.getMeta('config');
    const identity = JSON.stringify({ architectureHash: this.architectureHash, seed: config.seed, strategy: config.strategy.name });
    if (storedConfig && storedConfig !== identity) {
      const before = JSON.parse(storedConfig) as Record<string, unknown>;
      const now = JSON.parse(identity) as Record<string, unknown>;
      const changed = Object.keys(now).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(now[k]));
      throw new FedSegError(`this server state was created with a different ${changed.join(', ')}; use a new --db or the original config`, { file: this.store.file, field: changed[0] });
    }
    this.store.setMeta('config', identity);
    const swept = this.checkpoints.sweepTemporaryFiles();
    if (swept.length > 0) this.store.audit({ actor: 'server', action: 'partial-checkpoint-removed', detail: { files: swept } });
    const spooled = this.spool.sweep();
    if (spooled.length > 0) this.store.audit({ actor: 'server', action: 'spooled-updates-removed', detail: { rounds: spooled } });
    for (const row of this.store.rounds()) {
      if (row.status === 'approval' || row.status === 'training') {
        this.store.setRoundStatus(row.round, row.attempt, 'interrupted', 'server stopped during the round');
        this.store.audit({ actor: 'server', action: 'round-interrupted', round: row.round, detail: { attempt: row.attempt, phase: row.status } });
      }
    }
    const completed = this.store.completedRounds().reverse();
    for (const row of completed) {
      const loaded = row.checkpoint && row.checkpoint_sha256 ? this.checkpoints.read(row.checkpoint, row.checkpoint_sha256, config.modelConfig) : null;
      if (loaded) {
        this.global = loaded.model.tensors;
        this.globalHash = loaded.model.sha256;
        this.globalBytes = loaded.bytes;
        this.lastCompleted = row.round;
        const state = this.checkpoints.readStrategyState(row.checkpoint!, config.modelConfig);
        if (state.length > 0) this.strategy.importState(state);
        this.store.audit({ actor: 'server', action: 'resumed', round: row.round, detail: { checkpoint: row.checkpoint }, modelOut: this.globalHash });
        this.log(`resuming after round ${row.round} (checkpoint ${row.checkpoint})`);
        return;
      }
      this.store.setRoundStatus(row.round, row.attempt, 'invalid-checkpoint', 'checkpoint missing or its SHA-256 does not match');
      this.store.audit({ actor: 'server', action: 'checkpoint-rejected', round: row.round, detail: { checkpoint: row.checkpoint, expectedSha256: row.checkpoint_sha256 } });
      this.log(`checkpoint of round ${row.round} is torn or missing; ignoring it`);
    }
    this.global = initialWeights(config.modelConfig, config.seed);
    const written = this.checkpoints.write(0, config.modelConfig, this.global, null);
    this.globalHash = written.modelHash;
    this.globalBytes = written.bytes;
    this.store.recordInitialModel(written.modelHash, written.file, written.sha256, config.seed);
    this.lastCompleted = 0;
    this.log(`initial global model from seed ${config.seed} (${written.file})`);
  }

  /** Runs rounds until all are done, the federation fails, or stop() is called. */
  async run(): Promise<FederationState> {
    this.state = 'running';
    this.heartbeat = setInterval(() => this.checkHeartbeats(), this.config.heartbeatS * 1000);
    try {
      while (!this.stopping && this.lastCompleted < this.config.rounds) {
        const round = this.lastCompleted + 1;
        // Announcing to an empty room would only burn attempts; wait for a quorum to be online.
        await this.waitFor(Number.POSITIVE_INFINITY, () => this.bySite.size >= this.config.minSites);
        if (this.stopping) break;
        const attempt = this.store.nextAttempt(round);
        const spool = this.spool.round(round, attempt);
        let outcome: 'completed' | 'abandoned';
        try {
          outcome = await this.runRound(round, attempt, spool);
        } finally {
          // Completed, abandoned or stopped: the round's updates are not needed any more.
          spool.discard();
        }
        if (this.stopping) break;
        if (outcome === 'completed') continue;
        const missed = this.store.missedAttempts(round);
        if (missed >= this.config.maxAttemptsPerRound) {
          // The attempt in the entry marks where a restart after this failure starts a fresh count.
          this.store.audit({ actor: 'server', action: 'federation-failed', round, detail: { attempt, reason: `round ${round} missed its quorum ${missed} times` } });
          return this.finish('failed');
        }
        await this.sleep(this.config.retryDelayS * 1000);
      }
      if (this.stopping) return this.finish('stopped');
      await this.waitFor(Date.now() + this.config.evaluationDeadlineS * 1000, () => this.awaitingFinalEval.size === 0);
      this.store.audit({ actor: 'server', action: 'federation-finished', round: this.lastCompleted, detail: { rounds: this.lastCompleted }, modelOut: this.globalHash });
      for (const c of this.bySite.values()) c.send({ type: 'done', rounds: this.lastCompleted });
      return this.finish('finished');
    } catch (err) {
      this.log(`federation stopped by an internal error: ${errorMessage(err)}`);
      this.store.audit({ actor: 'server', action: 'federation-failed', detail: { reason: errorMessage(err) } });
      return this.finish('failed');
    }
  }

  private finish(state: FederationState): FederationState {
    this.state = state;
    this.current = null;
    this.resolveDone(state);
    this.emit('finished', state);
    return state;
  }

  stop(): void {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.poke();
    for (const c of this.connections) c.close(CLOSE.serverShutdown, 'server shutting down');
  }

  // ---------------------------------------------------------------- the round

  private async runRound(round: number, attempt: number, spool: RoundSpool): Promise<'completed' | 'abandoned'> {
    const config = this.config;
    const registered = this.store.sites().map((s) => s.name);
    const base: RoundInstructions = {
      epochs: config.localEpochs, learningRate: config.learningRate, batchSize: config.batchSize, mu: 0,
      seed: roundSeed(config.seed, round, attempt),
    };
    const state: RoundState = {
      round, attempt, phase: 'approval',
      instructions: this.strategy.configureRound(round, registered, base),
      approvalDeadline: Date.now() + config.approvalDeadlineS * 1000,
      trainingDeadline: 0,
      responses: new Map(), pending: new Set(), participants: new Set(), accepted: new Map(), spool, receiving: new Set(), progress: new Map(),
    };
    this.store.startRound(round, attempt, this.globalHash);
    this.current = state;
    this.emit('round-started', round, attempt);
    this.log(`round ${round} (attempt ${attempt}): announced to ${this.bySite.size} online of ${registered.length} registered sites`);
    for (const c of this.bySite.values()) this.sendAnnounce(c, state);

    await this.waitFor(state.approvalDeadline, () => this.store.sites().every((s) => state.responses.has(s.name)));
    if (this.stopping) return 'abandoned';
    for (const site of this.store.sites().map((s) => s.name)) {
      if (state.responses.has(site)) continue;
      this.store.recordApproval(round, attempt, site, 'timeout', 'no answer before the approval deadline');
      this.bySite.get(site)?.send({ type: 'left-out', round, reason: 'no approval before the approval deadline' });
    }
    const approved = [...state.responses].filter(([, d]) => d === 'approved').map(([s]) => s);
    const approvers = approved.filter((s) => this.bySite.has(s));
    for (const site of approved.filter((s) => !this.bySite.has(s))) {
      this.store.audit({ actor: 'server', action: 'left-out', round, detail: { attempt, site, reason: 'disconnected before the weights were sent' } });
    }
    if (approvers.length < config.minSites) {
      return this.abandon(state, `${approvers.length} connected site(s) approved, ${config.minSites} needed`);
    }

    state.phase = 'training';
    state.trainingDeadline = Date.now() + config.trainingDeadlineS * 1000;
    this.store.setRoundStatus(round, attempt, 'training');
    const frame = this.globalFrame('train', round);
    const cached: string[] = [];
    for (const site of approvers) {
      state.participants.add(site);
      state.pending.add(site);
      if (this.sendTrainWeights(this.bySite.get(site)!, round, frame)) cached.push(site);
    }
    this.store.audit({ actor: 'server', action: 'weights-sent', round, detail: { attempt, sites: approvers, bytes: frame.length, alreadyHeldBy: cached }, modelOut: this.globalHash });
    this.log(`round ${round}: weights sent to ${approvers.join(', ')}`);

    await this.waitFor(state.trainingDeadline, () => state.pending.size === 0);
    if (this.stopping) return 'abandoned';
    for (const site of state.pending) {
      this.store.audit({ actor: 'server', action: 'left-out', round, detail: { attempt, site, reason: 'no update before the training deadline' } });
      this.bySite.get(site)?.send({ type: 'left-out', round, reason: 'no update before the training deadline' });
    }
    state.pending.clear();
    this.disconnectRemovedSites();
    // Sorted by site so the aggregate (float sums, medians) does not depend on arrival order.
    const updates = [...state.accepted.values()].sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
    if (updates.length < config.minSites) {
      return this.abandon(state, `${updates.length} valid update(s) arrived, ${config.minSites} needed`);
    }

    state.phase = 'aggregating';
    const modelIn = this.globalHash;
    // Weight caps and norm clipping come before the strategy: the bound comes from the norms taken
    // at intake, then each update is clipped as it is read back from the spool. A strategy that
    // still produces a non-finite model (or whose optimiser would overflow) abandons the round, so
    // nothing non-finite is ever checkpointed and the federation carries on with the previous model.
    let bounded: BoundPlan;
    let next: TensorList;
    try {
      bounded = planBounds(updates, l2Distance(this.global), config.clipping);
      next = await aggregateSpooled(this.strategy, round, this.global, state.spool, bounded.reports);
      const bad = firstNonFinite(next);
      if (bad) throw new FedSegError(`the aggregate holds NaN or Infinity in "${bad}"`, { field: 'weights' });
    } catch (err) {
      return this.abandon(state, `aggregation refused: ${errorMessage(err)}`);
    }
    const written = this.checkpoints.write(round, config.modelConfig, next, this.strategy.exportState());
    const sites = updates.map((u) => u.site);
    const numCases = bounded.reports.reduce((n, r) => n + r.weight, 0);
    const clipped = bounded.reports.filter((r) => r.clippedTo !== null);
    for (const r of clipped) this.log(`round ${round}: update from ${r.site} clipped from norm ${r.norm.toPrecision(4)} to ${bounded.bound.toPrecision(4)}`);
    this.store.completeRound({
      round, attempt, modelIn, modelOut: written.modelHash, checkpoint: written.file, checkpointSha256: written.sha256, sites, numCases,
      strategy: this.strategy.name, bounds: bounded.reports, clipBound: bounded.bound,
    });
    this.global = next;
    this.globalHash = written.modelHash;
    this.globalBytes = written.bytes;
    this.lastCompleted = round;
    this.current = null;
    this.log(`round ${round}: aggregated ${sites.length} update(s) over ${numCases} cases with ${this.strategy.name}`);
    const evalFrame = this.globalFrame('evaluate', round);
    if (round === config.rounds) this.awaitingFinalEval = new Set(this.bySite.keys());
    for (const c of this.bySite.values()) {
      c.send({ type: 'round-result', round, attempt, status: 'completed', sites, numCases, modelHash: written.modelHash, sitesRegistered: this.store.sites().length });
      c.sendFrame(evalFrame, written.modelHash);
      c.evaluationsOwed.add(round);
    }
    this.emit('round-completed', round, sites, written.modelHash);
    return 'completed';
  }

  private abandon(state: RoundState, reason: string): 'abandoned' {
    const { round, attempt } = state;
    this.store.setRoundStatus(round, attempt, 'abandoned', reason);
    this.store.audit({ actor: 'server', action: 'round-abandoned', round, detail: { attempt, reason, updatesDiscarded: [...state.accepted.keys()] }, modelIn: this.globalHash, modelOut: this.globalHash });
    this.current = null;
    this.log(`round ${round} (attempt ${attempt}) abandoned: ${reason}; the global model is unchanged`);
    for (const c of this.bySite.values()) {
      c.send({ type: 'round-result', round, attempt, status: 'abandoned', sites: [], numCases: 0, reason, sitesRegistered: this.store.sites().length });
    }
    this.emit('round-abandoned', round, attempt, reason);
    return 'abandoned';
  }

  private sendAnnounce(c: SiteConnection, state: RoundState): void {
    const site = c.site!;
    const instructions = state.instructions.get(site) ?? [...state.instructions.values()][0] ?? {
      epochs: this.config.localEpochs, learningRate: this.config.learningRate, batchSize: this.config.batchSize, mu: 0, seed: 0,
    };
    const announce: Announce = {
      type: 'announce', round: state.round, attempt: state.attempt, totalRounds: this.config.rounds,
      approvalDeadline: state.approvalDeadline, trainingDeadlineS: this.config.trainingDeadlineS,
      strategy: this.strategy.name, architectureHash: this.architectureHash,
      model: this.config.modelConfig, instructions, leavesSite: LEAVES_SITE,
      sitesRegistered: this.store.sites().length,
    };
    c.send(announce);
  }

  /** Sends the weights to train on, or just their hash when this connection already holds them; true if cached. */
  private sendTrainWeights(c: SiteConnection, round: number, frame = this.globalFrame('train', round)): boolean {
    if (c.lastGlobalHash === this.globalHash) {
      c.send({ type: 'train-cached', round, sha256: this.globalHash });
      return true;
    }
    c.sendFrame(frame, this.globalHash);
    return false;
  }

  private globalFrame(purpose: 'train' | 'evaluate', round: number): Buffer {
    return encodeFrame({ kind: 'global', purpose, round, architectureHash: this.architectureHash, sha256: this.globalHash }, this.globalBytes);
  }

  // ---------------------------------------------------------------- connections

  attach(c: SiteConnection): void {
    this.connections.add(c);
    const authTimer = setTimeout(() => {
      if (!c.authenticated && !this.verifying.has(c)) this.refuse(c, 'hello-timeout', 'no hello within 10 s');
    }, AUTH_TIMEOUT_MS);
    c.ws.on('message', (data: RawData, isBinary: boolean) => {
      if (c.revoked) return;
      c.lastSeen = Date.now();
      const bytes = toBuffer(data);
      c.bytesReceived += bytes.length;
      try {
        if (!isBinary) this.onText(c, bytes.toString('utf8'));
        else if (!c.authenticated) this.refuse(c, 'frame-before-hello', 'binary frame before authentication');
        else this.protocolError(c, `updates are uploaded by HTTP PUT to ${UPLOAD_PATH} with the session's upload ticket, not sent over the WebSocket`);
      } catch (err) {
        this.log(`internal error handling a message from ${c.site ?? c.remote}: ${errorMessage(err)}`);
      }
    });
    c.ws.on('error', (err: Error & { code?: string }) => {
      const oversized = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      if (!c.authenticated && !this.authFailures.fail(c.ip).audit) return;
      this.store.audit({ actor: c.site ?? `unauthenticated ${c.remote}`, action: oversized ? 'oversized-frame' : 'connection-error', round: this.round, detail: { error: err.message, limit: this.config.maxMessageBytes } });
    });
    c.ws.on('close', (code: number) => {
      clearTimeout(authTimer);
      this.connections.delete(c);
      this.uploadTickets.revoke(c);
      if (c.site && this.bySite.get(c.site) === c) {
        this.bySite.delete(c.site);
        this.awaitingFinalEval.delete(c.site);
        this.store.audit({ actor: c.site, action: 'site-disconnected', round: this.round, detail: { code, phase: this.current?.phase ?? null } });
        this.emit('site-disconnected', c.site);
        this.poke();
      }
    });
  }

  /**
   * Refuses an unauthenticated connection. Each refusal counts toward its address's lockout; only
   * those up to the lockout are audited, so a flood of bad hellos cannot fill the audit log.
   */
  private refuse(c: SiteConnection, code: RefusalCode, reason: string): void {
    const { audit, blocked } = this.authFailures.fail(c.ip);
    if (audit) this.store.audit({ actor: `unauthenticated ${c.remote}`, action: 'auth-failed', detail: { code, reason, ...(blocked ? { lockedOutForS: this.authFailures.retryAfterS(c.ip) } : {}) } });
    c.send({ type: 'auth-failed', code, reason });
    c.close(CLOSE.authFailed, code);
  }

  /** Cuts off a connection that misbehaves before authenticating (e.g. sends megabytes), without reading on. */
  dropUnauthenticated(c: SiteConnection, reason: string): void {
    const { audit } = this.authFailures.fail(c.ip);
    if (audit) this.store.audit({ actor: `unauthenticated ${c.remote}`, action: 'pre-auth-limit', detail: { reason } });
    c.ws.terminate();
  }

  /** Answers a bad message; a connection that keeps sending them is closed, so it cannot fill the audit log. */
  private protocolError(c: SiteConnection, message: string): void {
    c.protocolErrors++;
    if (c.protocolErrors > MAX_PROTOCOL_ERRORS) {
      if (c.protocolErrors > MAX_PROTOCOL_ERRORS + 1) return;
      this.store.audit({ actor: c.site ?? `unauthenticated ${c.remote}`, action: 'protocol-errors-exceeded', round: this.round, detail: { limit: MAX_PROTOCOL_ERRORS, last: message } });
      return c.close(CLOSE.protocolError, `more than ${MAX_PROTOCOL_ERRORS} bad messages`);
    }
    this.store.audit({ actor: c.site ?? `unauthenticated ${c.remote}`, action: 'protocol-error', round: this.round, detail: { error: message } });
    c.send({ type: 'error', code: 'bad-message', message });
  }

  private onText(c: SiteConnection, text: string): void {
    const held = this.verifying.get(c);
    if (held) return void held.push(text);
    let message: SiteMessage;
    try {
      message = decodeJson(SiteMessageSchema, text, this.config.maxMessageBytes);
    } catch (err) {
      if (!c.authenticated) return this.refuse(c, 'bad-hello', `first message must be a valid hello: ${errorMessage(err)}`);
      return this.protocolError(c, errorMessage(err));
    }
    if (!c.authenticated) {
      if (message.type !== 'hello') return this.refuse(c, 'bad-hello', `first message must be hello, got ${message.type}`);
      return void this.onHello(c, message).catch((err: unknown) => this.log(`internal error handling the hello of ${c.remote}: ${errorMessage(err)}`));
    }
    switch (message.type) {
      case 'hello': return this.protocolError(c, 'already authenticated');
      case 'approve':
      case 'decline': return this.onDecision(c, message.type, message.round, message.attempt, message.type === 'decline' ? message.reason : undefined);
      case 'withdraw': return this.onWithdraw(c, message.round, message.attempt, message.reason);
      case 'progress':
        if (this.current?.round === message.round && this.current.pending.has(c.site!)) {
          this.current.progress.set(c.site!, { epoch: message.epoch, epochs: message.epochs, loss: message.loss });
        }
        return;
      case 'evaluation': return this.onEvaluation(c, message.round, message.numCases, message.metrics);
      case 'resend-weights': {
        const state = this.current;
        if (!state || state.round !== message.round || !state.pending.has(c.site!)) return this.protocolError(c, `no weights to resend for round ${message.round}`);
        if (c.resentRound === state.round) return this.protocolError(c, `weights for round ${message.round} were already resent once`);
        c.resentRound = state.round;
        return c.sendFrame(this.globalFrame('train', state.round), this.globalHash);
      }
      case 'ping': return c.send({ type: 'pong', t: message.t });
      case 'pong': return;
    }
  }

  private async onHello(c: SiteConnection, hello: Extract<SiteMessage, { type: 'hello' }>): Promise<void> {
    if (hello.protocol !== PROTOCOL_VERSION) return this.refuse(c, 'protocol-version', `protocol version ${hello.protocol} is not supported (server speaks ${PROTOCOL_VERSION})`);
    const site = this.store.siteByTokenLocator(tokenLocator(hello.token));
    const held: string[] = [];
    this.verifying.set(c, held);
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
    c.send({ type: 'welcome', protocol: PROTOCOL_VERSION, site: site.name, heartbeatMs: this.config.heartbeatS * 1000, maxMessageBytes: this.config.maxMessageBytes, architectureHash: this.architectureHash, uploadTicket: this.uploadTickets.issue(c) });
    this.emit('site-connected', site.name);
    this.resync(c);
    this.poke();
    for (const text of held) this.onText(c, text);
  }

  /** Brings a (re)connected site up to date with the round in progress. */
  private resync(c: SiteConnection): void {
    const state = this.current;
    const site = c.site!;
    if (this.state === 'finished') return c.send({ type: 'done', rounds: this.lastCompleted });
    if (!state) return;
    if (state.phase === 'approval') {
      if (!state.responses.has(site)) this.sendAnnounce(c, state);
      return;
    }
    if (state.pending.has(site)) {
      this.store.audit({ actor: site, action: 'site-resumed', round: state.round, detail: { attempt: state.attempt } });
      this.sendAnnounce(c, state);
      this.sendTrainWeights(c, state.round);
      return;
    }
    if (!state.participants.has(site)) c.send({ type: 'left-out', round: state.round, reason: `round ${state.round} is past its approval phase` });
  }

  private onDecision(c: SiteConnection, decision: 'approve' | 'decline', round: number, attempt: number, reason?: string): void {
    const state = this.current;
    const site = c.site!;
    if (!state || state.round !== round || state.attempt !== attempt || state.phase !== 'approval') {
      this.protocolError(c, `${decision} for round ${round} attempt ${attempt} is not expected now`);
      return;
    }
    if (state.responses.has(site)) return this.protocolError(c, `site already answered round ${round}`);
    state.responses.set(site, decision === 'approve' ? 'approved' : 'declined');
    this.store.recordApproval(round, attempt, site, decision === 'approve' ? 'approved' : 'declined', reason ?? null);
    if (decision === 'decline') c.send({ type: 'left-out', round, reason: 'declined by the site' });
    this.poke();
  }

  /** A participant that cannot deliver leaves the round now, not at the training deadline. */
  private onWithdraw(c: SiteConnection, round: number, attempt: number, reason: string): void {
    const state = this.current;
    const site = c.site!;
    if (!state || state.round !== round || state.attempt !== attempt || !state.pending.delete(site)) {
      return this.protocolError(c, `withdraw from round ${round} attempt ${attempt}: the site has no update owed in it`);
    }
    this.store.audit({ actor: site, action: 'left-out', round, detail: { attempt, site, reason: `withdrawn by the site: ${reason}` } });
    this.log(`round ${round}: ${site} withdrew (${reason})`);
    c.send({ type: 'left-out', round, reason: 'withdrawn by the site' });
    this.poke();
  }

  /**
   * One evaluation per global model this connection was sent to evaluate: no replay for old rounds,
   * no flood. The operator's global metric caps each site's case count (metrics-summary.ts).
   */
  private onEvaluation(c: SiteConnection, round: number, numCases: number, metrics: Record<string, number>): void {
    if (!c.evaluationsOwed.delete(round)) {
      return this.protocolError(c, `evaluation for round ${round} was not asked for (one per global model sent to this site to evaluate)`);
    }
    this.store.recordEvaluation(round, c.site!, numCases, metrics);
    this.emit('evaluation', round, c.site!, metrics);
    if (round === this.config.rounds) {
      this.awaitingFinalEval.delete(c.site!);
      this.poke();
    }
  }

  /**
   * Takes in an update frame the site uploaded (server/update-upload.ts; `contentsSha256` is its model
   * file's hash, taken as it streamed in). Returns the intake while it runs: the frame's memory is
   * the upload slot's, reused once validation and spooling are done.
   */
  receiveUpdate(c: SiteConnection, bytes: Uint8Array, contentsSha256: string): Promise<void> | void {
    this.disconnectRemovedSites();
    if (!c.authenticated || !c.open) return;
    const site = c.site!;
    let header: UpdateFrameHeader;
    let payload: Uint8Array;
    try {
      const frame = decodeFrame(bytes, this.config.maxMessageBytes);
      if (frame.header.kind !== 'update') throw new Error(`sites may only send update frames, got ${frame.header.kind}`);
      header = frame.header;
      payload = frame.payload;
    } catch (err) {
      return this.protocolError(c, errorMessage(err));
    }
    const state = this.current;
    const collecting = state?.phase === 'training' && state.round === header.round && state.attempt === header.attempt ? state : null;
    const ctx: UpdateContext = {
      round: state?.phase === 'training' ? state.round : null,
      attempt: state?.phase === 'training' ? state.attempt : null,
      architectureHash: this.architectureHash,
      global: this.global,
      declaredCases: c.declaredTrain,
      registeredCases: c.registeredCases,
      alreadySubmitted: this.store.hasAcceptedUpdate(header.round, header.attempt, site) || (collecting?.receiving.has(site) ?? false),
      participating: state?.participants.has(site) ?? false,
    };
    const early = checkUpdateHeader(header, ctx);
    if (early && !early.ok) return this.rejectUpdate(c, header, payload, bytes.length, early.reason);
    // The header checks passed, so this is the round collecting now and the site one of its participants.
    return this.takeUpdate(c, collecting!, header, payload, bytes.length, ctx, contentsSha256);
  }

  /**
   * Validates an update (server/update-intake.ts), writes it to the round's spool and accepts it,
   * unless the round moved on (its deadline passed, the site was removed) meanwhile. Only the norm
   * and counts are kept; the frame is released once written.
   */
  private async takeUpdate(c: SiteConnection, state: RoundState, header: UpdateFrameHeader, payload: Uint8Array, frameBytes: number, ctx: UpdateContext, contentsSha256: string): Promise<void> {
    const site = c.site!;
    state.receiving.add(site);
    let inspected;
    try {
      inspected = inspectUpdate(payload, contentsSha256, header, ctx, this.config.modelConfig, site);
      if (inspected.ok) await state.spool.write(site, inspected.tensorBytes);
    } catch (err) {
      state.receiving.delete(site);
      this.log(`round ${header.round}: cannot store the update from ${site}: ${errorMessage(err)}`);
      return this.rejectUpdate(c, header, payload, frameBytes, 'the server could not store the update');
    }
    state.receiving.delete(site);
    if (!inspected.ok) return this.rejectUpdate(c, header, payload, frameBytes, inspected.reason);
    const { norm, sha256 } = inspected;
    if (this.current !== state || state.phase !== 'training' || !state.pending.has(site)) {
      state.spool.remove(site);
      return this.rejectUpdate(c, header, payload, frameBytes, `round ${header.round} stopped collecting updates while this one was being stored`);
    }
    state.accepted.set(site, { site, numCases: header.numCases, registeredCases: c.registeredCases, norm, metrics: header.metrics });
    state.pending.delete(site);
    this.store.recordUpdate({ round: header.round, attempt: header.attempt, site, numCases: header.numCases, norm, bytes: frameBytes, sha256, status: 'accepted', reason: null, metrics: header.metrics });
    c.send({ type: 'update-accepted', round: header.round, norm });
    this.log(`round ${header.round}: update from ${site} accepted (${header.numCases} cases, norm ${norm.toPrecision(4)})`);
    this.poke();
  }

  /**
   * Records and answers a refused update. A participant whose update for the current round fails
   * validation is out of this round; a duplicate or stale update leaves its standing unchanged.
   * The audit log names the update by the SHA-256 of its model bytes, hashed here only on refusal.
   */
  private rejectUpdate(c: SiteConnection, header: UpdateFrameHeader, payload: Uint8Array, frameBytes: number, reason: string): void {
    const site = c.site!;
    const state = this.current;
    this.store.recordUpdate({ round: header.round, attempt: header.attempt, site, numCases: Number.isFinite(header.numCases) ? header.numCases : null, norm: null, bytes: frameBytes, sha256: sha256Hex(payload), status: 'rejected', reason });
    c.send({ type: 'update-rejected', round: header.round, reason });
    this.emit('update-rejected', header.round, site, reason);
    this.log(`round ${header.round}: update from ${site} rejected: ${reason}`);
    if (state?.phase === 'training' && state.round === header.round && state.attempt === header.attempt && state.pending.has(site) && !state.receiving.has(site)) {
      state.pending.delete(site);
      state.participants.delete(site);
      c.send({ type: 'left-out', round: header.round, reason: `update rejected: ${reason}` });
      this.poke();
    }
  }

  /**
   * Disconnects sites the operator removed (`fedseg server remove-site` runs in another process and
   * only writes the DB): checked every heartbeat, before accepting an update and before aggregating.
   */
  private disconnectRemovedSites(): void {
    const active = new Set(this.store.sites().map((s) => s.name));
    for (const c of this.connections) {
      if (!c.site || c.revoked || active.has(c.site)) continue;
      const site = c.site;
      c.revoked = true;
      this.awaitingFinalEval.delete(site);
      const state = this.current;
      if (state) {
        state.pending.delete(site);
        state.participants.delete(site);
        state.accepted.delete(site);
      }
      this.store.audit({ actor: 'server', action: 'site-revoked-disconnected', round: this.round, detail: { site } });
      this.log(`site ${site} was removed by the operator; disconnecting it`);
      c.send({ type: 'auth-failed', code: 'site-removed', reason: 'site removed by the operator' });
      c.close(CLOSE.authFailed, 'site-removed');
      if (this.bySite.get(site) === c) this.bySite.delete(site);
      this.poke();
    }
  }

  private checkHeartbeats(): void {
    this.disconnectRemovedSites();
    const limit = 3 * this.config.heartbeatS * 1000;
    const now = Date.now();
    for (const c of this.connections) {
      if (!c.authenticated) continue;
      if (now - c.lastSeen > limit) {
        this.store.audit({ actor: c.site!, action: 'heartbeat-timeout', round: this.round, detail: { silentMs: now - c.lastSeen } });
        c.ws.terminate();
      } else {
        c.send({ type: 'ping', t: now });
      }
    }
  }

  // ---------------------------------------------------------------- waiting

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Resolves when `done()` holds (checked on every event), the deadline passes, or stop() is called. */
  private async waitFor(deadline: number, done: () => boolean): Promise<void> {
    while (!this.stopping && !done() && Date.now() < deadline) {
      this.emit('waiting');
      await new Promise<void>((resolve) => {
        // setTimeout caps at ~24.8 days; longer waits simply re-check.
        const timer = setTimeout(resolve, Math.min(2 ** 31 - 1, Math.max(0, deadline - Date.now())));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private sleep(ms: number): Promise<void> {
    return this.waitFor(Date.now() + ms, () => false);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
