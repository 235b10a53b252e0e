/**
 * One attempt at one round, in the order of the protocol (SPEC section 5):
 *
 *   approve     announce the round; wait for each registered site's answer or the approval deadline
 *   distribute  send the global weights to the connected approvers
 *   collect     wait for their updates (taken in by server/update-receiver.ts) or the training deadline
 *   aggregate   bound the updates, combine them with the strategy, checkpoint, send the new model out
 *
 * An attempt without a quorum at either wait is abandoned and leaves the global model unchanged.
 * Every step is recorded in the store before it is acted on, so a restart resumes from the last
 * completed round.
 */
import type { EventEmitter } from 'node:events';
import { errorMessage, FedSegError } from '../core/errors.js';
import type { RoundInstructions } from '../core/federation/protocol.js';
import { planBounds, type BoundPlan } from '../core/federation/bound-updates.js';
import { roundSeed } from '../core/federation/round-seed.js';
import type { Strategy } from '../core/federation/strategies/index.js';
import { firstNonFinite, l2Distance, type TensorList } from '../core/federation/tensors.js';
import type { CheckpointStore } from './checkpoints.js';
import type { ConditionWait } from './condition-wait.js';
import type { FederationConfig } from './config.js';
import type { Store } from './db.js';
import type { FederationEvents } from './federation.js';
import type { GlobalModel } from './global-model.js';
import type { RoundSender } from './round-sender.js';
import { RoundState, type AcceptedUpdate } from './round-state.js';
import type { SiteRegistry } from './site-registry.js';
import { aggregateSpooled, type RoundSpool } from './update-spool.js';

export type RoundOutcome = 'completed' | 'abandoned';

export interface CoordinatorParts {
  config: FederationConfig;
  store: Store;
  checkpoints: CheckpointStore;
  log: (line: string) => void;
  strategy: Strategy;
  global: GlobalModel;
  sender: RoundSender;
  registry: SiteRegistry;
  wait: ConditionWait;
  events: EventEmitter<FederationEvents>;
}

export class RoundCoordinator {
  /** The attempt in progress, null between attempts. */
  current: RoundState | null = null;
  /** Sites sent the final global model to evaluate, until each reports. */
  readonly awaitingFinalEval = new Set<string>();

  constructor(private readonly p: CoordinatorParts) {}

  async run(round: number, attempt: number, spool: RoundSpool): Promise<RoundOutcome> {
    const { minSites } = this.p.config;
    const state = this.announce(round, attempt, spool);
    const approvers = await this.approve(state);
    if (this.p.wait.stopped) return 'abandoned';
    if (approvers.length < minSites) return this.abandon(state, `${approvers.length} connected site(s) approved, ${minSites} needed`);
    this.distribute(state, approvers);
    const updates = await this.collect(state);
    if (this.p.wait.stopped) return 'abandoned';
    if (updates.length < minSites) return this.abandon(state, `${updates.length} valid update(s) arrived, ${minSites} needed`);
    return this.aggregate(state, updates);
  }

  private announce(round: number, attempt: number, spool: RoundSpool): RoundState {
    const { config, store, strategy, global, registry } = this.p;
    const registered = store.sites().map((s) => s.name);
    const base: RoundInstructions = {
      epochs: config.localEpochs, learningRate: config.learningRate, batchSize: config.batchSize, mu: 0,
      seed: roundSeed(config.seed, round, attempt),
    };
    const state = new RoundState(round, attempt, strategy.configureRound(round, registered, base), Date.now() + config.approvalDeadlineS * 1000, spool);
    store.startRound(round, attempt, global.hash);
    this.current = state;
    this.p.events.emit('round-started', round, attempt);
    const online = registry.online();
    this.p.log(`round ${round} (attempt ${attempt}): announced to ${online.length} online of ${registered.length} registered sites`);
    for (const c of online) this.p.sender.announce(c, state);
    return state;
  }

  /** Waits for every registered site's answer; returns the approvers still connected. */
  private async approve(state: RoundState): Promise<string[]> {
    const { store, registry } = this.p;
    const { round, attempt } = state;
    await this.p.wait.until(state.approvalDeadline, () => store.sites().every((s) => state.responses.has(s.name)));
    if (this.p.wait.stopped) return [];
    for (const site of store.sites().map((s) => s.name)) {
      if (state.responses.has(site)) continue;
      store.recordApproval(round, attempt, site, 'timeout', 'no answer before the approval deadline');
      registry.get(site)?.send({ type: 'left-out', round, reason: 'no approval before the approval deadline' });
    }
    const approved = [...state.responses].filter(([, d]) => d === 'approved').map(([s]) => s);
    for (const site of approved.filter((s) => !registry.get(s))) {
      store.audit({ actor: 'server', action: 'left-out', round, detail: { attempt, site, reason: 'disconnected before the weights were sent' } });
    }
    return approved.filter((s) => registry.get(s));
  }

  /** Sends the weights to train on (or just their hash to a site that holds them) and starts the training clock. */
  private distribute(state: RoundState, approvers: string[]): void {
    const { config, store, global, registry } = this.p;
    const { round, attempt } = state;
    state.phase = 'training';
    state.trainingDeadline = Date.now() + config.trainingDeadlineS * 1000;
    store.setRoundStatus(round, attempt, 'training');
    const frame = global.frame('train', round);
    const cached: string[] = [];
    for (const site of approvers) {
      state.participants.add(site);
      state.pending.add(site);
      if (this.p.sender.trainWeights(registry.get(site)!, round, frame)) cached.push(site);
    }
    store.audit({ actor: 'server', action: 'weights-sent', round, detail: { attempt, sites: approvers, bytes: frame.length, alreadyHeldBy: cached }, modelOut: global.hash });
    this.p.log(`round ${round}: weights sent to ${approvers.join(', ')}`);
  }

  /** Waits for the participants' updates; returns the accepted ones, sorted by site. */
  private async collect(state: RoundState): Promise<AcceptedUpdate[]> {
    const { store, registry } = this.p;
    const { round, attempt } = state;
    await this.p.wait.until(state.trainingDeadline, () => state.pending.size === 0);
    if (this.p.wait.stopped) return [];
    for (const site of state.pending) {
      store.audit({ actor: 'server', action: 'left-out', round, detail: { attempt, site, reason: 'no update before the training deadline' } });
      registry.get(site)?.send({ type: 'left-out', round, reason: 'no update before the training deadline' });
    }
    state.pending.clear();
    registry.disconnectRemoved();
    // Sorted by site so the aggregate (float sums, medians) does not depend on arrival order.
    return [...state.accepted.values()].sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
  }

  /**
   * Weight caps and norm clipping come before the strategy: the bound comes from the norms taken at
   * intake, then each update is clipped as it is read back from the spool. A strategy that still
   * produces a non-finite model (or whose optimiser would overflow) abandons the round, so nothing
   * non-finite is ever checkpointed and the federation carries on with the previous model.
   */
  private async aggregate(state: RoundState, updates: AcceptedUpdate[]): Promise<RoundOutcome> {
    const { config, strategy, global } = this.p;
    state.phase = 'aggregating';
    let bounded: BoundPlan;
    let next: TensorList;
    try {
      bounded = planBounds(updates, l2Distance(global.tensors), config.clipping);
      next = await aggregateSpooled(strategy, state.round, global.tensors, state.spool, bounded.reports);
      const bad = firstNonFinite(next);
      if (bad) throw new FedSegError(`the aggregate holds NaN or Infinity in "${bad}"`, { field: 'weights' });
    } catch (err) {
      return this.abandon(state, `aggregation refused: ${errorMessage(err)}`);
    }
    this.complete(state, updates, bounded, next);
    return 'completed';
  }

  /** Checkpoints the new global model, records the round, and sends the model out to evaluate. */
  private complete(state: RoundState, updates: AcceptedUpdate[], bounded: BoundPlan, next: TensorList): void {
    const { config, store, strategy, global, registry, log } = this.p;
    const { round, attempt } = state;
    const modelIn = global.hash;
    const written = this.p.checkpoints.write(round, config.modelConfig, next, strategy.exportState());
    const sites = updates.map((u) => u.site);
    const numCases = bounded.reports.reduce((n, r) => n + r.weight, 0);
    for (const r of bounded.reports.filter((r) => r.clippedTo !== null)) {
      log(`round ${round}: update from ${r.site} clipped from norm ${r.norm.toPrecision(4)} to ${bounded.bound.toPrecision(4)}`);
    }
    store.completeRound({
      round, attempt, modelIn, modelOut: written.modelHash, checkpoint: written.file, checkpointSha256: written.sha256, sites, numCases,
      strategy: strategy.name, bounds: bounded.reports, clipBound: bounded.bound,
    });
    global.adopt(round, next, written.modelHash, written.bytes);
    this.current = null;
    log(`round ${round}: aggregated ${sites.length} update(s) over ${numCases} cases with ${strategy.name}`);
    const evalFrame = global.frame('evaluate', round);
    const online = registry.online();
    if (round === config.rounds) {
      this.awaitingFinalEval.clear();
      for (const c of online) this.awaitingFinalEval.add(c.site!);
    }
    for (const c of online) {
      c.send({ type: 'round-result', round, attempt, status: 'completed', sites, numCases, modelHash: written.modelHash, sitesRegistered: store.sites().length });
      c.sendFrame(evalFrame, written.modelHash);
      c.evaluationsOwed.add(round);
    }
    this.p.events.emit('round-completed', round, sites, written.modelHash);
  }

  private abandon(state: RoundState, reason: string): RoundOutcome {
    const { store, global, registry } = this.p;
    const { round, attempt } = state;
    store.setRoundStatus(round, attempt, 'abandoned', reason);
    store.audit({ actor: 'server', action: 'round-abandoned', round, detail: { attempt, reason, updatesDiscarded: [...state.accepted.keys()] }, modelIn: global.hash, modelOut: global.hash });
    this.current = null;
    this.p.log(`round ${round} (attempt ${attempt}) abandoned: ${reason}; the global model is unchanged`);
    for (const c of registry.online()) {
      c.send({ type: 'round-result', round, attempt, status: 'abandoned', sites: [], numCases: 0, reason, sitesRegistered: store.sites().length });
    }
    this.p.events.emit('round-abandoned', round, attempt, reason);
    return 'abandoned';
  }
}
