/**
 * The site runtime shared by `fedseg site` and the desktop app: takes part in the federation's
 * rounds on the site's behalf. For each announced round it asks the approval hook (showing exactly
 * what would leave the site), trains on the approved cases through a LocalTrainer, sends the
 * weights + case count + aggregate metrics, and evaluates every new global model on the local
 * validation cases. It never sends voxels, file names or header text: the only payloads it builds
 * are model files and numeric metrics.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { errorMessage } from '../core/errors.js';
import type { Announce, GlobalFrameHeader, RoundInstructions, RoundPrivacy, SecureRound, ServerMessage, WaitingMessage } from '../core/federation/protocol.js';
import { flatten, l2Distance, type TensorList } from '../core/federation/tensors.js';
import { siteNoise } from '../core/privacy/dp-aggregation.js';
import { ringToBytes } from '../core/privacy/fixed-point.js';
import { SecAggSite } from '../core/privacy/secagg-site.js';
import type { ModelConfig } from '../core/model/config.js';
import { parameterCount } from '../core/model/parameters.js';
import { clipUpdate } from '../core/privacy/clip.js';
import { decodeModel, encodeModel } from '../core/weights/index.js';
import { FederationClient, type Refusal } from './client.js';
import {
  DEFAULT_MIN_METRIC_CASES, evaluationMessage, outgoingPlan, progressMessage, updateHeader, type MetricKeys, type OutgoingMessagePlan,
} from './outgoing.js';

/** Training progress a trainer reports: per step (step/steps/ETA) and at the end of each epoch. */
export interface TrainerProgress {
  epoch: number;
  epochs: number;
  step?: number;
  steps?: number;
  loss?: number;
  etaSeconds?: number;
}

/** What a trainer needs to do for the site; `site/trainer.ts` implements it on a data folder. */
export interface LocalTrainer {
  /** Approved cases available for training and for validation (counts only). */
  caseCounts(): Promise<{ train: number; validation: number }>;
  /** The metric keys train() and evaluate() report; only these are ever sent, and the approval lists them. */
  readonly metricKeys: MetricKeys;
  train(args: {
    config: ModelConfig; weights: TensorList; instructions: RoundInstructions; signal: AbortSignal;
    onProgress: (p: TrainerProgress) => void;
  }): Promise<{ weights: TensorList; numCases: number; metrics: Record<string, number> }>;
  /**
   * Aggregate metrics of `weights` on the local validation cases (e.g. dice_WT, dice_TC, dice_ET); `model` names
   * the global model (its round and the SHA-256 the server gave it), for trainers that keep it.
   */
  evaluate(args: { config: ModelConfig; weights: TensorList; signal: AbortSignal; model?: { round: number; sha256: string } }): Promise<{ numCases: number; metrics: Record<string, number> }>;
  /** Compute backend in use, e.g. "wasm (SIMD, 1 thread)", for the UI. */
  backend?(): string;
}

/**
 * Shown to the site admin before a round: `outgoing` lists exactly what the messages will carry (site/outgoing.ts
 * builds both); `leavesSite` is the server's own description.
 */
export interface ApprovalRequest {
  round: number;
  attempt: number;
  totalRounds: number;
  strategy: string;
  model: { arch: string; baseFilters: number; depth: number; architectureHash: string; parameterCount: number; updateBytes: number };
  instructions: RoundInstructions;
  trainingCases: number;
  validationCases: number;
  outgoing: OutgoingMessagePlan[];
  /** Metrics describing fewer cases than this are not sent. */
  minMetricCases: number;
  /** Differential privacy of the round (clip, noise, epsilon so far and after it), null without DP. */
  privacy: RoundPrivacy | null;
  /** Secure aggregation of the round (threshold, clip range), null in a plain round. */
  secureAggregation: SecureRound | null;
  leavesSite: string[];
  approvalDeadline: Date;
  trainingDeadlineS: number;
}

export type ApprovalDecision = boolean | { approve: boolean; reason?: string };
export type ApprovalHook = (request: ApprovalRequest) => Promise<ApprovalDecision> | ApprovalDecision;

export type RuntimeEvent =
  | { type: 'connected'; site: string; server: string }
  | { type: 'disconnected'; reason: string; retryInMs: number | null }
  | { type: 'round-announced'; round: number; attempt: number; totalRounds: number }
  | { type: 'approval'; round: number; attempt: number; approved: boolean; reason?: string }
  | { type: 'training-started'; round: number; numCases: number; backend?: string }
  | ({ type: 'training-progress'; round: number } & TrainerProgress)
  /** `metrics`: the local numbers (the header carries only what site/outgoing.ts lets out); `sha256`: of the model bytes sent. */
  | { type: 'update-sent'; round: number; numCases: number; bytes: number; norm: number; metrics: Record<string, number>; sha256: string }
  /** `norm`: as the server computed it; absent in a secure round (the server sees only masked data). */
  | { type: 'update-accepted'; round: number; norm?: number }
  | { type: 'update-rejected'; round: number; reason: string }
  | { type: 'left-out'; round: number; reason: string }
  | { type: 'round-result'; round: number; status: 'completed' | 'abandoned'; sites: string[]; sitesRegistered: number; reason?: string }
  /** Local numbers (events never leave the site); the evaluation message carries only what site/outgoing.ts lets out. */
  | { type: 'global-metrics'; round: number; numCases: number; metrics: Record<string, number> }
  /** What the server waits for (more sites, approvals, updates...); message null when it no longer waits. */
  | { type: 'waiting'; message: string | null; for: WaitingMessage['for']; sites: string[]; deadline: number | null }
  | { type: 'finished'; rounds: number }
  /** The server refused this site (code and words from the server); the runtime ends. */
  | ({ type: 'refused' } & Refusal)
  | { type: 'error'; message: string };

export interface SiteRuntimeOptions {
  url: string;
  token: string;
  trainer: LocalTrainer;
  approve: ApprovalHook;
  /** Extra CA (PEM) to trust for wss://. */
  ca?: string | Buffer;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Metrics describing fewer cases than this are not sent (default DEFAULT_MIN_METRIC_CASES). */
  minMetricCases?: number;
  /**
   * Seeds this site's share of the noise in distributed-DP rounds (core/privacy/gaussian-noise.ts,
   * siteNoiseKey), for the demo's reproducible runs only. Absent (a real site): fresh OS randomness
   * every round, which nobody else can regenerate.
   */
  noiseSeed?: number;
}

export type SiteOutcome = 'finished' | 'stopped' | 'refused';

export class SiteRuntime extends EventEmitter<{ event: [RuntimeEvent] }> {
  private client: FederationClient | null = null;
  private announces = new Map<string, Announce>();
  private answered = new Set<string>();
  /** The round being trained, so a resent global frame after reconnect does not start it twice. */
  private training: { key: string; abort: AbortController } | null = null;
  /** Last update built, kept until the server acknowledges it, to resend when the server asks again after a reconnect. */
  private unacknowledged: { round: number; attempt: number; header: Parameters<FederationClient['sendUpdate']>[0]; bytes: Uint8Array } | null = null;
  private work: Promise<void> = Promise.resolve();
  private resolveDone!: (o: SiteOutcome) => void;
  readonly done: Promise<SiteOutcome>;
  private cases = { train: 0, validation: 0 };
  /** The last global model received, which the server may name (by hash) instead of resending it. */
  private lastGlobal: { sha256: string; config: ModelConfig; tensors: TensorList } | null = null;

  private readonly minMetricCases: number;
  /** Secure rounds this site approved, by "round:attempt": its keys, shares and masking state. */
  private readonly secure = new Map<string, SecAggSite>();

  constructor(private readonly opts: SiteRuntimeOptions) {
    super();
    this.minMetricCases = opts.minMetricCases ?? DEFAULT_MIN_METRIC_CASES;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get bytesSent(): number {
    return this.client?.bytesSent ?? 0;
  }

  get bytesReceived(): number {
    return this.client?.bytesReceived ?? 0;
  }

  async start(): Promise<void> {
    this.cases = await this.opts.trainer.caseCounts();
    const client = new FederationClient({
      url: this.opts.url, token: this.opts.token, cases: this.cases, ca: this.opts.ca,
      initialBackoffMs: this.opts.initialBackoffMs, maxBackoffMs: this.opts.maxBackoffMs, software: 'fedseg-site',
    });
    this.client = client;
    // After a reconnect the server resends the round's weights if it still waits for this site;
    // onGlobal then resends an update that was never acknowledged.
    client.on('welcome', (site) => this.emitEvent({ type: 'connected', site, server: this.opts.url }));
    client.on('disconnected', (reason, retryInMs) => this.emitEvent({ type: 'disconnected', reason, retryInMs }));
    client.on('refused', (refusal) => {
      this.emitEvent({ type: 'refused', ...refusal });
      this.finish('refused');
    });
    client.on('protocol-error', (message) => this.emitEvent({ type: 'error', message }));
    client.on('message', (m) => this.onMessage(m));
    client.on('global', (header, payload) => this.onGlobal(header, payload));
    client.start();
  }

  stop(): void {
    this.training?.abort.abort();
    this.client?.stop();
    this.finish('stopped');
  }

  private finish(outcome: SiteOutcome): void {
    this.client?.stop();
    this.resolveDone(outcome);
  }

  private emitEvent(e: RuntimeEvent): void {
    this.emit('event', e);
  }

  private onMessage(m: ServerMessage): void {
    switch (m.type) {
      case 'announce': return void this.onAnnounce(m);
      case 'train-cached':
        if (this.lastGlobal?.sha256 === m.sha256) return this.startTraining(m.round, this.lastGlobal.config, this.lastGlobal.tensors);
        this.client?.send({ type: 'resend-weights', round: m.round });
        return;
      case 'update-accepted':
        if (this.unacknowledged?.round === m.round) this.unacknowledged = null;
        return this.emitEvent({ type: 'update-accepted', round: m.round, norm: m.norm });
      case 'update-rejected':
        if (this.unacknowledged?.round === m.round) this.unacknowledged = null;
        return this.emitEvent({ type: 'update-rejected', round: m.round, reason: m.reason });
      case 'left-out':
        if (this.training?.key.startsWith(`${m.round}:`)) this.training.abort.abort();
        if (this.unacknowledged?.round === m.round) this.unacknowledged = null;
        return this.emitEvent({ type: 'left-out', round: m.round, reason: m.reason });
      case 'round-result':
        if (this.training?.key === `${m.round}:${m.attempt}`) this.training.abort.abort();
        // The round's mask keys and shares are of no further use; keep no secret longer than needed.
        this.secure.delete(`${m.round}:${m.attempt}`);
        return this.emitEvent({ type: 'round-result', round: m.round, status: m.status, sites: m.sites, sitesRegistered: m.sitesRegistered, reason: m.reason });
      case 'done':
        this.emitEvent({ type: 'finished', rounds: m.rounds });
        // Let a queued evaluation of the final model finish and report before leaving.
        return void this.work.then(() => this.finish('finished'));
      case 'secagg-roster':
      case 'secagg-relay':
      case 'secagg-unmask-request':
        return this.onSecureStep(m);
      case 'error': return this.emitEvent({ type: 'error', message: `server: ${m.message}` });
      case 'waiting': return this.emitEvent({ type: 'waiting', message: m.message, for: m.for, sites: m.sites, deadline: m.deadline });
      default:
    }
  }

  private async onAnnounce(a: Announce): Promise<void> {
    const key = `${a.round}:${a.attempt}`;
    this.announces.set(key, a);
    if (this.answered.has(key)) return; // re-announce after a reconnect: already answered
    this.answered.add(key);
    this.emitEvent({ type: 'round-announced', round: a.round, attempt: a.attempt, totalRounds: a.totalRounds });
    let decision: { approve: boolean; reason?: string };
    try {
      const config = a.model;
      const parameters = parameterCount(config);
      const raw = await this.opts.approve({
        round: a.round, attempt: a.attempt, totalRounds: a.totalRounds, strategy: a.strategy,
        model: { arch: config.arch, baseFilters: config.baseFilters, depth: config.depth, architectureHash: a.architectureHash, parameterCount: parameters, updateBytes: 4 * parameters },
        instructions: a.instructions, trainingCases: this.cases.train, validationCases: this.cases.validation,
        outgoing: outgoingPlan(this.cases, this.opts.trainer.metricKeys, this.minMetricCases, Boolean(a.secureAggregation)), minMetricCases: this.minMetricCases,
        privacy: a.privacy ?? null, secureAggregation: a.secureAggregation ?? null, leavesSite: a.leavesSite,
        approvalDeadline: new Date(a.approvalDeadline), trainingDeadlineS: a.trainingDeadlineS,
      });
      decision = typeof raw === 'boolean' ? { approve: raw } : raw;
    } catch (err) {
      decision = { approve: false, reason: `approval failed: ${errorMessage(err)}` };
    }
    if (decision.approve && this.cases.train === 0) decision = { approve: false, reason: 'no approved training cases at this site' };
    // Its share of the noise alone would reach the server nearly bare: only under masking.
    if (decision.approve && a.privacy?.mode === 'distributed' && !a.secureAggregation) decision = { approve: false, reason: 'distributed DP announced without secure aggregation' };
    this.client?.send(decision.approve
      ? { type: 'approve', round: a.round, attempt: a.attempt }
      : { type: 'decline', round: a.round, attempt: a.attempt, reason: decision.reason });
    if (decision.approve && a.secureAggregation && this.client?.site) {
      const secure = new SecAggSite(this.client.site, a.round, a.attempt, a.privacy ? siteNoise(a.privacy, a.secureAggregation.threshold) : null);
      this.secure.set(key, secure);
      this.client.send({ type: 'secagg-keys', round: a.round, attempt: a.attempt, ...secure.publicKeys() });
    }
    this.emitEvent({ type: 'approval', round: a.round, attempt: a.attempt, approved: decision.approve, reason: decision.reason });
  }

  /**
   * The secure-aggregation steps between approval and the next round (core/privacy/secagg-site.ts
   * checks each request). A step this site cannot take safely withdraws it from the round.
   */
  private onSecureStep(m: Extract<ServerMessage, { type: 'secagg-roster' | 'secagg-relay' | 'secagg-unmask-request' }>): void {
    const secure = this.secure.get(`${m.round}:${m.attempt}`);
    if (!secure) return this.emitEvent({ type: 'error', message: `secure-aggregation step for round ${m.round} attempt ${m.attempt}, which this site did not approve` });
    try {
      switch (m.type) {
        case 'secagg-roster':
          this.client?.send({ type: 'secagg-shares', round: m.round, attempt: m.attempt, shares: secure.shareKeys(m) });
          return;
        case 'secagg-relay':
          return secure.receiveShares(m.shares);
        case 'secagg-unmask-request':
          this.client?.send({ type: 'secagg-unmask', round: m.round, attempt: m.attempt, ...secure.unmask(m) });
          return;
      }
    } catch (err) {
      this.emitEvent({ type: 'error', message: `secure aggregation, round ${m.round}: ${errorMessage(err)}` });
      if (m.type !== 'secagg-unmask-request') {
        this.training?.abort.abort();
        this.client?.send({ type: 'withdraw', round: m.round, attempt: m.attempt, reason: 'this site refused a secure-aggregation step' });
      }
    }
  }

  private onGlobal(header: GlobalFrameHeader, payload: Uint8Array): void {
    let model;
    try {
      model = decodeModel(payload, { source: `global model of round ${header.round}` });
      if (model.sha256 !== header.sha256) throw new Error('model hash does not match the frame header');
      if (model.architectureHash !== header.architectureHash) throw new Error('architecture hash does not match the frame header');
    } catch (err) {
      return this.emitEvent({ type: 'error', message: `ignored a global model: ${errorMessage(err)}` });
    }
    this.lastGlobal = { sha256: model.sha256, config: model.config, tensors: model.tensors };
    if (header.purpose === 'evaluate') {
      this.enqueue(() => this.evaluate(header.round, header.sha256, model.config, model.tensors));
      return;
    }
    this.startTraining(header.round, model.config, model.tensors);
  }

  private startTraining(round: number, config: ModelConfig, global: TensorList): void {
    const announce = [...this.announces.values()].filter((a) => a.round === round).sort((x, y) => y.attempt - x.attempt)[0];
    if (!announce) return this.emitEvent({ type: 'error', message: `weights for round ${round} arrived without an announcement` });
    const key = `${announce.round}:${announce.attempt}`;
    if (this.training?.key === key) return; // resumed connection; training continues
    if (this.unacknowledged && this.unacknowledged.round === announce.round && this.unacknowledged.attempt === announce.attempt) {
      void this.client?.sendUpdate(this.unacknowledged.header, this.unacknowledged.bytes);
      return;
    }
    const abort = new AbortController();
    this.training = { key, abort };
    this.enqueue(() => this.train(announce, config, global, abort).finally(() => {
      if (this.training?.key === key) this.training = null;
    }));
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((err) => this.emitEvent({ type: 'error', message: errorMessage(err) }));
  }

  private async train(a: Announce, config: ModelConfig, global: TensorList, abort: AbortController): Promise<void> {
    if (abort.signal.aborted) return;
    const started = Date.now();
    this.emitEvent({ type: 'training-started', round: a.round, numCases: this.cases.train, backend: this.opts.trainer.backend?.() });
    let lastProgress = 0;
    let result: Awaited<ReturnType<LocalTrainer['train']>>;
    try {
      result = await this.opts.trainer.train({
        config, weights: global, instructions: a.instructions, signal: abort.signal,
        onProgress: (p) => {
          this.emitEvent({ type: 'training-progress', round: a.round, ...p });
          if (Date.now() - lastProgress > 1000) {
            lastProgress = Date.now();
            // In a secure round the server learns only sums, so no per-site loss either.
            this.client?.send(progressMessage(a.round, a.secureAggregation ? { epoch: p.epoch, epochs: p.epochs } : p, this.cases.train, this.minMetricCases));
          }
        },
      });
    } catch (err) {
      if (abort.signal.aborted) return; // left out or round over: stopping was the point
      // Tell the server at once, so the round does not wait for this site until its deadline. The
      // error itself stays here: its text can name local files, and file names can carry patient ids.
      this.client?.send({ type: 'withdraw', round: a.round, attempt: a.attempt, reason: 'local training failed (the reason is in the site\'s own log)' });
      throw err;
    }
    if (abort.signal.aborted) return;
    // Under secure aggregation the encoding clips (in float64) and adds this site's noise (SecAggSite.maskedInput).
    if (a.secureAggregation) return this.sendMaskedInput(a, global, result);
    // DP-FedAvg: the update is clipped here, before it is encoded, so no unclipped update leaves the site.
    const weights = a.privacy ? clipUpdate(global, result.weights, a.privacy.clip).weights : result.weights;
    const norm = l2Distance(weights, global);
    const header = updateHeader({
      round: a.round, attempt: a.attempt, architectureHash: a.architectureHash, numCases: result.numCases, metrics: result.metrics,
      trainingSeconds: (Date.now() - started) / 1000, norm,
    }, this.opts.trainer.metricKeys, this.minMetricCases);
    const bytes = encodeModel(config, weights, { round: a.round });
    this.unacknowledged = { round: a.round, attempt: a.attempt, header, bytes };
    const sent = (await this.client?.sendUpdate(header, bytes)) ?? null;
    this.emitEvent({
      type: 'update-sent', round: a.round, numCases: result.numCases, bytes: sent ?? bytes.length, norm, metrics: finiteOnly(result.metrics),
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }

  /** A secure round's input: the encoded update and case count (or, under DP, clipped, noised and of weight 1) under masks; no metrics, no norm. */
  private async sendMaskedInput(a: Announce, global: TensorList, result: { weights: TensorList; numCases: number }): Promise<void> {
    const secure = this.secure.get(`${a.round}:${a.attempt}`);
    if (!secure?.encoding) {
      this.client?.send({ type: 'withdraw', round: a.round, attempt: a.attempt, reason: 'the secure-aggregation key exchange did not complete at this site' });
      return this.emitEvent({ type: 'error', message: `round ${a.round}: trained, but the key exchange had not completed; withdrew` });
    }
    const numCases = Math.min(result.numCases, this.cases.train);
    const masked = secure.maskedInput(flatten(result.weights), flatten(global), numCases, this.opts.noiseSeed);
    const bytes = ringToBytes(masked);
    const header = { kind: 'masked-update' as const, round: a.round, attempt: a.attempt, architectureHash: a.architectureHash, elements: masked.length };
    this.unacknowledged = { round: a.round, attempt: a.attempt, header, bytes };
    const sent = (await this.client?.sendUpdate(header, bytes)) ?? null;
    this.emitEvent({
      type: 'update-sent', round: a.round, numCases, bytes: sent ?? bytes.length, norm: l2Distance(result.weights, global), metrics: {},
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }

  private async evaluate(round: number, sha256: string, config: ModelConfig, weights: TensorList): Promise<void> {
    const abort = new AbortController();
    const { numCases, metrics } = await this.opts.trainer.evaluate({ config, weights, signal: abort.signal, model: { round, sha256 } });
    const message = evaluationMessage(round, numCases, metrics, this.opts.trainer.metricKeys, this.minMetricCases);
    this.client?.send(message);
    // Events stay at the site: they carry the local numbers, including those the floor kept from the server.
    this.emitEvent({ type: 'global-metrics', round, numCases, metrics: finiteOnly(metrics) });
  }
}

function finiteOnly(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
}
