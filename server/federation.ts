/**
 * The aggregation server's federation (SPEC section 5), put together from its parts:
 *
 *   recovery.ts           restores the last verified round at start-up
 *   round-coordinator.ts  one attempt at a round: approve -> distribute -> collect -> aggregate
 *   site-registry.ts      hello, authentication, resync, removal and heartbeats of sites
 *   site-messages.ts      reads and routes what sites send
 *   update-receiver.ts    takes in updates for the round collecting them (update-inspector.ts checks them on worker threads)
 *   update-upload.ts      receives them: HTTP PUT with the session's upload ticket, into reused slots
 *   connection.ts         one site's connection; transport.ts carries it over WebSocket
 *
 * This class runs rounds until all are done, the federation fails, or it is stopped, and gives the
 * operator view (server/http-api.ts, server/waiting.ts) what it reads.
 */
import { EventEmitter } from 'node:events';
import { errorMessage } from '../core/errors.js';
import { createStrategy, type Strategy } from '../core/federation/strategies/index.js';
import { epsilonAfter } from '../core/privacy/accountant.js';
import { checkBudget, type PrivacySpent } from '../core/privacy/budget.js';
import { DifferentiallyPrivate, DistributedDp } from '../core/privacy/dp-aggregation.js';
import { architectureHash } from '../core/weights/index.js';
import type { CheckpointStore } from './checkpoints.js';
import { ConditionWait } from './condition-wait.js';
import type { FederationConfig } from './config.js';
import type { SiteConnection } from './connection.js';
import type { Store } from './db.js';
import { GlobalModel } from './global-model.js';
import type { FailureLimiter } from './rate-limit.js';
import { recover } from './recovery.js';
import { RoundCoordinator, type RoundOutcome } from './round-coordinator.js';
import { RoundSender } from './round-sender.js';
import { SiteMessages } from './site-messages.js';
import { SiteRegistry } from './site-registry.js';
import { UpdateInspector } from './update-inspector.js';
import { UpdateReceiver } from './update-receiver.js';
import type { UpdateSpool } from './update-spool.js';

export type FederationState = 'starting' | 'running' | 'finished' | 'failed' | 'stopped';

export interface FederationEvents {
  'site-connected': [site: string];
  'site-disconnected': [site: string];
  'round-started': [round: number, attempt: number];
  'round-completed': [round: number, sites: string[], modelHash: string];
  'round-abandoned': [round: number, attempt: number, reason: string];
  'update-rejected': [round: number, site: string, reason: string];
  evaluation: [round: number, site: string, metrics: Record<string, number>];
  /** The loop is (still) blocked on a condition; server/waiting.ts says on what. `fresh`: a new step of the loop began. */
  waiting: [fresh: boolean];
  finished: [state: FederationState];
}

export class Federation extends EventEmitter<FederationEvents> {
  state: FederationState = 'starting';
  readonly architectureHash: string;
  readonly strategy: Strategy;
  readonly registry: SiteRegistry;
  private readonly global: GlobalModel;
  private readonly rounds: RoundCoordinator;
  private readonly messages: SiteMessages;
  private readonly inspector: UpdateInspector;
  private readonly wait = new ConditionWait((fresh) => this.emit('waiting', fresh));
  private heartbeat: NodeJS.Timeout | null = null;
  /** Why the federation ended before its last round (the privacy budget), for the status page; null otherwise. */
  endReason: string | null = null;
  readonly done: Promise<FederationState>;
  private resolveDone!: (s: FederationState) => void;

  constructor(
    readonly config: FederationConfig, readonly store: Store, readonly checkpoints: CheckpointStore, private readonly log: (line: string) => void,
    /** Failed hellos count toward the remote address's lockout (shared with the operator API). */
    authFailures: FailureLimiter,
    /** Where accepted updates wait for aggregation (the server's data folder). */
    private readonly spool: UpdateSpool,
  ) {
    super();
    this.architectureHash = architectureHash(config.modelConfig);
    const strategy = createStrategy(config.strategy);
    const { privacy, secureAggregation } = config;
    // Distributed DP (with secure aggregation): the sites add the noise; the server divides the sum by D.
    this.strategy = !privacy ? strategy
      : secureAggregation ? new DistributedDp(strategy, { ...privacy, threshold: secureAggregation.threshold })
        : new DifferentiallyPrivate(strategy, privacy);
    this.global = new GlobalModel(this.architectureHash);
    this.inspector = new UpdateInspector(config.modelConfig);
    const current = () => this.rounds.current;
    const changed = () => this.wait.poke();
    const sender = new RoundSender(config, store, this.strategy, this.global);
    this.registry = new SiteRegistry(config, store, log, authFailures, sender, {
      current,
      finishedAfter: () => (this.state === 'finished' ? this.global.round : null),
      connected: (site) => {
        this.emit('site-connected', site);
        changed();
      },
      disconnected: (site) => {
        this.rounds.awaitingFinalEval.delete(site);
        this.emit('site-disconnected', site);
        changed();
      },
      removed: (site) => {
        this.rounds.awaitingFinalEval.delete(site);
        this.rounds.current?.drop(site);
        changed();
      },
    });
    const receiver = new UpdateReceiver(config, store, log, this.global, this.inspector, {
      current, changed, rejected: (round, site, reason) => this.emit('update-rejected', round, site, reason),
    });
    this.messages = new SiteMessages(config, store, log, { registry: this.registry, receiver, global: this.global }, {
      current, changed,
      evaluated: (round, site, metrics) => {
        this.emit('evaluation', round, site, metrics);
        if (round === config.rounds) {
          this.rounds.awaitingFinalEval.delete(site);
          changed();
        }
      },
    });
    this.rounds = new RoundCoordinator({
      config, store, checkpoints, log, strategy: this.strategy, global: this.global, sender, registry: this.registry, wait: this.wait, events: this,
    });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (config.privacy) this.on('round-completed', (round) => this.recordPrivacySpent(round));
  }

  /** Epsilon spent by the released models (rounds completed), for the operator view; null without DP. */
  privacySpent(): PrivacySpent | null {
    const p = this.config.privacy;
    if (!p) return null;
    return {
      mode: p.mode, clip: p.clip, noiseMultiplier: p.noiseMultiplier, delta: p.delta, budget: p.budget,
      epsilonSpent: epsilonAfter({ noiseMultiplier: p.noiseMultiplier, samplingRate: p.samplingRate }, this.global.round, p.delta),
    };
  }

  private recordPrivacySpent(round: number): void {
    const spent = this.privacySpent()!;
    const report = this.strategy instanceof DifferentiallyPrivate || this.strategy instanceof DistributedDp ? this.strategy.lastReport : null;
    const current = report?.round === round ? report : null;
    const clipped = current && 'clipped' in current ? current : null;
    const detail = {
      epsilon: spent.epsilonSpent, delta: spent.delta, budget: spent.budget,
      ...(current ? { updates: current.updates, noiseStd: current.noiseStd, denominator: current.denominator } : {}), ...(clipped ? { clipped: clipped.clipped } : {}),
    };
    this.store.audit({ actor: 'server', action: 'privacy-spent', round, detail });
    const what = clipped ? `${clipped.clipped} of ${clipped.updates} update(s) clipped to ${spent.clip}` : current ? `${current.updates} site-clipped, site-noised input(s)` : '';
    this.log(`round ${round}: differential privacy (${spent.mode}): ${current ? `${what}, noise std ${current.noiseStd.toPrecision(3)} per parameter of the average (D = ${current.denominator}); ` : ''}`
      + `epsilon spent ${spent.epsilonSpent.toFixed(3)} at delta ${spent.delta} of the budget ${spent.budget.epsilon}`);
  }

  /** True when the privacy budget does not allow the next round: recorded, and the federation ends. */
  private budgetExhausted(): boolean {
    if (!this.config.privacy) return false;
    const { refusal } = checkBudget(this.config.privacy, this.global.round);
    if (!refusal) return false;
    this.endReason = refusal;
    this.store.audit({ actor: 'server', action: 'privacy-budget-exhausted', round: this.global.round + 1, detail: { reason: refusal } });
    this.log(refusal);
    return true;
  }

  get round(): number | null {
    return this.rounds.current?.round ?? null;
  }

  get completedRounds(): number {
    return this.global.round;
  }

  onlineSites(): string[] {
    return this.registry.onlineSites();
  }

  /** Snapshot of the round in progress for the operator view. */
  currentRound() {
    return this.rounds.current?.view() ?? null;
  }

  /** Traffic on each site's current connection (for the operator view). */
  connectionStats(): Record<string, { connectedAt: string; bytesSent: number; bytesReceived: number }> {
    return Object.fromEntries(this.registry.online().map((c) => [c.site!, { connectedAt: new Date(c.connectedAt).toISOString(), bytesSent: c.bytesSent, bytesReceived: c.bytesReceived }]));
  }

  /** Restores the last completed round whose checkpoint verifies, or creates round 0 from the seed. */
  recover(): void {
    recover(this.global, { config: this.config, store: this.store, checkpoints: this.checkpoints, spool: this.spool, strategy: this.strategy, log: this.log });
  }

  /** Takes in an update frame a site uploaded (server/update-upload.ts); returns the intake while it runs. */
  upload(c: SiteConnection, frame: Uint8Array): Promise<void> | void {
    return this.messages.upload(c, frame);
  }

  /** Takes on a new site connection from the transport. */
  attach(c: SiteConnection): void {
    this.registry.attach(c);
    this.messages.listen(c);
  }

  /** Runs rounds until all are done, the federation fails, or stop() is called. */
  async run(): Promise<FederationState> {
    this.state = 'running';
    this.heartbeat = setInterval(() => this.registry.heartbeat(), this.config.heartbeatS * 1000);
    const { config, store } = this;
    try {
      while (!this.wait.stopped && this.global.round < config.rounds) {
        const round = this.global.round + 1;
        if (this.budgetExhausted()) break;
        // Announcing to an empty room would only burn attempts; wait for a quorum to be online.
        await this.wait.until(Number.POSITIVE_INFINITY, () => this.registry.online().length >= config.minSites);
        if (this.wait.stopped) break;
        const attempt = store.nextAttempt(round);
        const spool = this.spool.round(round, attempt);
        let outcome: RoundOutcome;
        try {
          outcome = await this.rounds.run(round, attempt, spool);
        } finally {
          // Completed, abandoned or stopped: the round's updates are not needed any more.
          spool.discard();
        }
        if (this.wait.stopped) break;
        if (outcome === 'completed') continue;
        const missed = store.missedAttempts(round);
        if (missed >= config.maxAttemptsPerRound) {
          // The attempt in the entry marks where a restart after this failure starts a fresh count.
          store.audit({ actor: 'server', action: 'federation-failed', round, detail: { attempt, reason: `round ${round} missed its quorum ${missed} times` } });
          return this.finish('failed');
        }
        await this.wait.sleep(config.retryDelayS * 1000);
      }
      if (this.wait.stopped) return this.finish('stopped');
      await this.wait.until(Date.now() + config.evaluationDeadlineS * 1000, () => this.rounds.awaitingFinalEval.size === 0);
      store.audit({ actor: 'server', action: 'federation-finished', round: this.global.round, detail: { rounds: this.global.round, ...(this.endReason ? { reason: this.endReason } : {}) }, modelOut: this.global.hash });
      for (const c of this.registry.online()) c.send({ type: 'done', rounds: this.global.round });
      return this.finish('finished');
    } catch (err) {
      this.log(`federation stopped by an internal error: ${errorMessage(err)}`);
      store.audit({ actor: 'server', action: 'federation-failed', detail: { reason: errorMessage(err) } });
      return this.finish('failed');
    }
  }

  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.wait.stop();
    this.registry.closeAll();
    void this.inspector.close();
  }

  private finish(state: FederationState): FederationState {
    this.state = state;
    this.rounds.current = null;
    this.resolveDone(state);
    this.emit('finished', state);
    return state;
  }
}
