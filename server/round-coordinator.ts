/**
 * One attempt at one round, in the order of the protocol (SPEC section 5):
 *
 *   approve     announce the round; wait for each registered site's answer or the approval deadline
 *   [exchange keys]  secure rounds: roster of the approvers' keys, relay of their sealed key shares
 *   distribute  send the global weights to the connected approvers
 *   collect     wait for their updates (taken in by server/update-receiver.ts) or the training deadline
 *   [unmask]    secure rounds: survivors' shares remove the masks from the sum of the masked inputs
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
import { firstNonFinite, l2Distance, plusFlat, type TensorList } from '../core/federation/tensors.js';
import { parameterCount } from '../core/model/parameters.js';
import { siteNoise } from '../core/privacy/dp-aggregation.js';
import { SecAggAbort, SecAggServer } from '../core/privacy/secagg-server.js';
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
    if (state.secure) return this.runSecure(state, state.secure, approvers);
    this.distribute(state, approvers);
    const updates = await this.collect(state);
    if (this.p.wait.stopped) return 'abandoned';
    if (updates.length < minSites) return this.abandon(state, `${updates.length} valid update(s) arrived, ${minSites} needed`);
    return this.aggregate(state, updates);
  }

  /**
   * A secure round (core/privacy, docs/PRIVACY.md): below the threshold at any step it is abandoned,
   * with nothing unmasked. The strategy gets the recovered case-weighted mean as one update of
   * weight N, which is what mean strategies compute from the separate updates.
   */
  private async runSecure(state: RoundState, secure: SecAggServer, approvers: string[]): Promise<RoundOutcome> {
    const { minSites } = this.p.config;
    try {
      const maskers = await this.exchangeKeys(state, secure, approvers);
      if (this.p.wait.stopped) return 'abandoned';
      this.distribute(state, maskers);
      await this.collect(state);
      if (this.p.wait.stopped) return 'abandoned';
      if (secure.survivors.length < minSites) return this.abandon(state, `${secure.survivors.length} masked input(s) arrived, ${minSites} needed`);
      const sum = await this.unmask(state, secure);
      if (this.p.wait.stopped) return 'abandoned';
      return this.aggregateSum(state, sum);
    } catch (err) {
      if (err instanceof SecAggAbort) return this.abandon(state, `secure aggregation: ${err.message}`);
      throw err;
    }
  }

  /** Rounds 0 and 1: the roster of the approvers that sent keys, then the relay of sealed shares among those that sent them (U2). */
  private async exchangeKeys(state: RoundState, secure: SecAggServer, approvers: string[]): Promise<string[]> {
    const { config, store, registry, wait } = this.p;
    const { round, attempt } = state;
    state.phase = 'key-exchange';
    const deadline = Date.now() + config.secureAggregation!.keyExchangeDeadlineS * 1000;
    state.secureDeadline = deadline;
    await wait.until(deadline, () => approvers.every((s) => secure.hasKeys(s) || !registry.get(s)));
    const declared = new Map(approvers.flatMap((s) => {
      const c = registry.get(s);
      return c ? [[s, c.declaredTrain] as const] : [];
    }));
    const roster = secure.fixRoster(declared);
    for (const entry of roster.sites) registry.get(entry.site)?.send({ type: 'secagg-roster', round, attempt, ...roster });
    await wait.until(deadline, () => roster.sites.every((e) => secure.sentShares(e.site) || !registry.get(e.site)));
    const relays = secure.fixMaskingSet();
    for (const [site, shares] of relays) registry.get(site)?.send({ type: 'secagg-relay', round, attempt, shares });
    for (const site of approvers.filter((s) => !relays.has(s))) {
      store.audit({ actor: 'server', action: 'left-out', round, detail: { attempt, site, reason: 'did not complete the secure-aggregation key exchange' } });
      registry.get(site)?.send({ type: 'left-out', round, reason: 'did not complete the secure-aggregation key exchange in time' });
    }
    store.audit({ actor: 'server', action: 'secagg-keys-exchanged', round, detail: { attempt, maskingSet: [...relays.keys()], threshold: secure.threshold, fractionBits: roster.encoding.fractionBits } });
    this.p.log(`round ${round}: secure aggregation among ${[...relays.keys()].join(', ')} (threshold ${secure.threshold}, ${roster.encoding.fractionBits} fractional bits)`);
    return [...relays.keys()].filter((s) => registry.get(s));
  }

  /** Round 3: asks the survivors for their shares and removes the masks once the threshold of them answered. */
  private async unmask(state: RoundState, secure: SecAggServer): Promise<ReturnType<SecAggServer['finish']>> {
    const { config, store, registry, wait } = this.p;
    const { round, attempt } = state;
    state.phase = 'unmasking';
    const request = secure.unmaskRequest();
    for (const site of request.survivors) registry.get(site)?.send({ type: 'secagg-unmask-request', round, attempt, ...request });
    const deadline = Date.now() + config.secureAggregation!.unmaskingDeadlineS * 1000;
    state.secureDeadline = deadline;
    await wait.until(deadline, () => request.survivors.every((s) => secure.answered(s) || !registry.get(s)));
    const sum = secure.finish();
    store.audit({ actor: 'server', action: 'secagg-unmasked', round, detail: { attempt, survivors: request.survivors, dropped: request.dropped, answered: secure.unmaskAnswers } });
    return sum;
  }

  /** The strategy's step on the unmasked mean; no server-side clipping (config load refuses it with secure aggregation). */
  private aggregateSum(state: RoundState, sum: ReturnType<SecAggServer['finish']>): RoundOutcome {
    const { strategy, global } = this.p;
    state.phase = 'aggregating';
    let next: TensorList;
    try {
      const aggregation = strategy.begin(state.round, global.tensors);
      if (aggregation.kind !== 'mean') throw new FedSegError(`strategy ${strategy.name} does not aggregate a mean`, { field: 'strategy' });
      aggregation.add(plusFlat(global.tensors, sum.mean), sum.totalCases);
      next = aggregation.finish();
      const bad = firstNonFinite(next);
      if (bad) throw new FedSegError(`the aggregate holds NaN or Infinity in "${bad}"`, { field: 'weights' });
    } catch (err) {
      return this.abandon(state, `aggregation refused: ${errorMessage(err)}`);
    }
    this.complete(state, next, { sites: sum.sites, numCases: sum.totalCases, bounds: [], clipBound: null });
    return 'completed';
  }

  private announce(round: number, attempt: number, spool: RoundSpool): RoundState {
    const { config, store, strategy, global, registry } = this.p;
    const registered = store.sites().map((s) => s.name);
    const base: RoundInstructions = {
      epochs: config.localEpochs, learningRate: config.learningRate, batchSize: config.batchSize, mu: 0,
      seed: roundSeed(config.seed, round, attempt),
    };
    const secure = config.secureAggregation
      ? new SecAggServer(round, attempt, config.secureAggregation.threshold, config.secureAggregation.clipRange, parameterCount(config.modelConfig) + 1,
        config.privacy ? siteNoise(config.privacy, config.secureAggregation.threshold) : null)
      : null;
    const state = new RoundState(round, attempt, strategy.configureRound(round, registered, base), Date.now() + config.approvalDeadlineS * 1000, spool, secure);
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
    // Counting first keeps each wake-up O(1) until every registered site could have answered.
    await this.p.wait.until(state.approvalDeadline, () => state.responses.size >= store.siteCount() && store.sites().every((s) => state.responses.has(s.name)));
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
    for (const r of bounded.reports.filter((r) => r.clippedTo !== null)) {
      this.p.log(`round ${state.round}: update from ${r.site} clipped from norm ${r.norm.toPrecision(4)} to ${bounded.bound.toPrecision(4)}`);
    }
    this.complete(state, next, {
      sites: updates.map((u) => u.site), numCases: bounded.reports.reduce((n, r) => n + r.weight, 0), bounds: bounded.reports, clipBound: bounded.bound,
    });
    return 'completed';
  }

  /** Checkpoints the new global model, records the round, and sends the model out to evaluate. */
  private complete(state: RoundState, next: TensorList, outcome: Pick<Parameters<Store['completeRound']>[0], 'sites' | 'numCases' | 'bounds' | 'clipBound'>): void {
    const { config, store, strategy, global, registry, log } = this.p;
    const { round, attempt } = state;
    const { sites, numCases } = outcome;
    const modelIn = global.hash;
    const written = this.p.checkpoints.write(round, config.modelConfig, next, strategy.exportState());
    store.completeRound({
      round, attempt, modelIn, modelOut: written.modelHash, checkpoint: written.file, checkpointSha256: written.sha256, ...outcome, strategy: strategy.name,
    });
    global.adopt(round, next, written.modelHash, written.bytes);
    this.current = null;
    log(`round ${round}: aggregated ${sites.length} update(s) over ${numCases} cases with ${strategy.name}`);
    const evalFrame = global.frame('evaluate', round);
    const online = registry.online();
    const sitesRegistered = store.siteCount();
    if (round === config.rounds) {
      this.awaitingFinalEval.clear();
      for (const c of online) this.awaitingFinalEval.add(c.site!);
    }
    for (const c of online) {
      c.send({ type: 'round-result', round, attempt, status: 'completed', sites, numCases, modelHash: written.modelHash, sitesRegistered });
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
    const sitesRegistered = store.siteCount();
    for (const c of registry.online()) {
      c.send({ type: 'round-result', round, attempt, status: 'abandoned', sites: [], numCases: 0, reason, sitesRegistered });
    }
    this.p.events.emit('round-abandoned', round, attempt, reason);
    return 'abandoned';
  }
}
