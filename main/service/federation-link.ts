/**
 * Bridges the shared site runtime (site/runtime.ts) to the app: the approval hook waits for the admin's
 * Approve/Decline in the UI, runtime events become round records, training progress gets an ETA, and every
 * global model the server sends for evaluation is kept on disk so the viewer can predict with it.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { regionMetricKey, REGIONS } from '../../core/metrics/regions.js';
import { siteNoise } from '../../core/privacy/dp-aggregation.js';
import { activeBackend } from '../../core/tf/backend.js';
import { saveModelFile, type ModelMeta } from '../../core/weights/index.js';
import type { ConnectionState, RegionScores, RoundRecord, TrainingProgress } from '../../preload/api.js';
import type { Refusal } from '../../site/client.js';
import { DATA_DIR_TRAINER_METRICS } from '../../site/trainer.js';
import {
  SiteRuntime, type ApprovalDecision, type ApprovalRequest, type LocalTrainer, type RuntimeEvent,
} from '../../site/runtime.js';
import { regionScores, type TrainingCaseFiles } from './cases.js';
import { UserFacingError } from './errors.js';
import type { SiteStore } from './site-store.js';

export type FederationEvent =
  | { type: 'connection'; state: Partial<ConnectionState> }
  | { type: 'round'; round: number; patch: Partial<RoundRecord> }
  | { type: 'progress'; progress: TrainingProgress }
  | { type: 'backend'; backend: { name: string; gpu: boolean } }
  | { type: 'model'; path: string }
  | { type: 'log'; level: 'info' | 'warning' | 'error'; message: string };

export type TrainerFactory = (cases: TrainingCaseFiles[]) => LocalTrainer;

/** How long to wait for the server's welcome before telling the admin the connection failed. */
const CONNECT_TIMEOUT_MS = 15_000;
/** An undecided approval is answered "decline" this long after its deadline (the server has moved on). */
const DECISION_GRACE_MS = 2_000;

export class FederationLink {
  private runtime: SiteRuntime | null = null;
  private cases: TrainingCaseFiles[] = [];
  /** The trainer over `trainerCases`; rebuilt before the next round when a case or its chosen mask changed. */
  private trainer: LocalTrainer | null = null;
  private trainerCases: TrainingCaseFiles[] = [];
  private serverUrl = '';
  private readonly decisions = new Map<number, (decision: ApprovalDecision) => void>();
  private trainingStart: { round: number; at: number } | null = null;
  private lastCompletedRound = 0;

  constructor(private readonly store: SiteStore, private readonly makeTrainer: TrainerFactory, private readonly emit: (event: FederationEvent) => void) {}

  setCases(cases: TrainingCaseFiles[]): void {
    this.cases = cases;
    if (masksKey(cases) !== masksKey(this.trainerCases)) this.trainer = null;
  }

  private currentTrainer(): LocalTrainer {
    if (!this.trainer) {
      this.trainerCases = this.cases;
      this.trainer = this.makeTrainer(this.cases);
    }
    return this.trainer;
  }

  get connected(): boolean {
    return this.runtime !== null;
  }

  /** Connects and resolves once the server has accepted the token; rejects with a plain-words reason. */
  async connect(serverUrl: string, token: string): Promise<{ siteName: string }> {
    await this.disconnect();
    const runtime = new SiteRuntime({
      url: toWebSocketUrl(serverUrl), token, trainer: this.wrapTrainer(),
      approve: (request) => this.askAdmin(request), initialBackoffMs: 500, maxBackoffMs: 10_000,
      minMetricCases: this.store.settings.minMetricCases,
    });
    this.serverUrl = serverUrl;
    this.runtime = runtime;
    runtime.on('event', (event) => this.onRuntimeEvent(event));
    try {
      // start() first preprocesses the training cases to declare their count; the timeout covers only the network.
      await runtime.start();
      const welcomed = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new UserFacingError(`The federation server at ${serverUrl} is unreachable. Check the address and that the server is running.`)), CONNECT_TIMEOUT_MS);
        runtime.on('event', (event) => {
          if (event.type === 'connected') {
            clearTimeout(timer);
            resolve(event.site);
          } else if (event.type === 'refused') {
            clearTimeout(timer);
            reject(new UserFacingError(refusalMessage(event)));
          } else if (event.type === 'disconnected') {
            // Never welcomed: the first failed attempt already tells the admin what is wrong.
            clearTimeout(timer);
            const detail = event.reason.replace(/^\d+\s*/, '');
            reject(new UserFacingError(`The federation server at ${serverUrl} is unreachable${detail ? ` (${detail})` : ''}. Check the address and that the server is running.`));
          }
        });
      });
      return { siteName: await welcomed };
    } catch (err) {
      runtime.stop();
      if (this.runtime === runtime) this.runtime = null;
      throw err;
    }
  }

  async disconnect(): Promise<void> {
    const runtime = this.runtime;
    this.runtime = null;
    for (const resolve of this.decisions.values()) resolve({ approve: false, reason: 'the site disconnected' });
    this.decisions.clear();
    if (runtime) {
      runtime.stop();
      await runtime.done;
      this.emit({ type: 'connection', state: { phase: 'offline', siteName: null, error: null, waiting: null } });
    }
  }

  decide(round: number, decision: ApprovalDecision): void {
    const resolve = this.decisions.get(round);
    if (!resolve) throw new UserFacingError(`Round ${round} is no longer waiting for a decision.`);
    this.decisions.delete(round);
    resolve(decision);
  }

  private askAdmin(request: ApprovalRequest): Promise<ApprovalDecision> {
    const previous = this.store.rounds.find((r) => r.round === request.round);
    const retryNote = request.attempt > 1
      ? `Attempt ${request.attempt} of round ${request.round}: the server retries a round that did not complete${previous?.reason ? ` (last time: ${previous.reason})` : ''}.`
      : null;
    this.emit({
      type: 'round', round: request.round, patch: {
        status: 'announced', deadline: request.approvalDeadline.toISOString(), reason: null,
        approval: {
          attempt: request.attempt, totalRounds: request.totalRounds, strategy: request.strategy,
          model: { arch: request.model.arch, baseFilters: request.model.baseFilters, depth: request.model.depth, parameterCount: request.model.parameterCount, updateBytes: request.model.updateBytes },
          instructions: { ...request.instructions }, trainingCases: request.trainingCases, validationCases: request.validationCases,
          trainingDeadlineS: request.trainingDeadlineS, outgoing: request.outgoing, minMetricCases: request.minMetricCases,
          privacy: request.privacy, siteNoiseStd: siteNoiseStdOf(request), serverDescription: request.leavesSite, retryNote,
        },
        sitesReturned: null, contribution: null,
      },
    });
    return new Promise<ApprovalDecision>((resolve) => {
      this.decisions.get(request.round)?.({ approve: false, reason: 'the round was announced again' });
      this.decisions.set(request.round, resolve);
      const wait = Math.max(0, request.approvalDeadline.getTime() - Date.now()) + DECISION_GRACE_MS;
      setTimeout(() => {
        if (this.decisions.get(request.round) !== resolve) return;
        this.decisions.delete(request.round);
        this.emit({ type: 'round', round: request.round, patch: { status: 'left-out', reason: 'no decision before the approval deadline' } });
        resolve({ approve: false, reason: 'no decision before the approval deadline' });
      }, wait).unref();
    });
  }

  /**
   * Adds what the app needs around the shared trainer: the current case set with the chosen masks (audited
   * per round), ETA, backend name, keeping each global model.
   */
  private wrapTrainer(): LocalTrainer {
    return {
      // The key list is the shared trainer's (every case set gives the same keys).
      metricKeys: DATA_DIR_TRAINER_METRICS,
      caseCounts: () => this.currentTrainer().caseCounts(),
      train: async (args) => {
        const round = this.currentTrainingRound();
        const trainer = this.currentTrainer();
        this.store.appendAudit({
          kind: 'training-masks', at: new Date().toISOString(), round, masks: this.trainerCases.map((c) => ({ caseId: c.id, mask: c.maskLabel })),
        });
        const result = await trainer.train({
          ...args,
          onProgress: (p) => {
            this.reportBackend();
            this.emit({ type: 'progress', progress: this.progressOf(round, p) });
            args.onProgress(p);
          },
        });
        this.reportBackend();
        return result;
      },
      evaluate: async (args) => {
        const dir = join(this.store.dir, 'models');
        await mkdir(dir, { recursive: true });
        const path = join(dir, 'global-latest.fsm');
        const meta: ModelMeta = args.model ? { round: args.model.round, globalSha256: args.model.sha256 } : { round: this.lastCompletedRound };
        await saveModelFile(path, args.config, args.weights, meta);
        this.emit({ type: 'model', path });
        return this.currentTrainer().evaluate(args);
      },
    };
  }

  private currentTrainingRound(): number {
    return this.trainingStart?.round ?? 0;
  }

  private progressOf(round: number, p: { epoch: number; epochs: number; loss?: number; step?: number; steps?: number }): TrainingProgress {
    const steps = p.steps ?? 0;
    const step = p.step ?? 0;
    // Epochs are 1-based; without step counts an epoch counts as done when reported.
    const fraction = Math.min(1, steps > 0 ? (p.epoch - 1 + step / steps) / p.epochs : p.epoch / p.epochs);
    const elapsed = this.trainingStart ? (Date.now() - this.trainingStart.at) / 1000 : 0;
    return {
      round, epoch: p.epoch, epochs: p.epochs, step, steps, loss: p.loss ?? Number.NaN, fraction,
      etaSeconds: fraction > 0 ? (elapsed / fraction) * (1 - fraction) : null,
    };
  }

  private statusOf(round: number): RoundRecord['status'] | undefined {
    return this.store.rounds.find((r) => r.round === round)?.status;
  }

  /**
   * 'sent', unless the server's verdict came first: it travels over the WebSocket, the upload's own
   * answer over HTTP, so 'update-accepted' and even the round's result can arrive before the upload
   * resolves, and the record must not step back from them.
   */
  private sentStatus(round: number): { status?: 'sent' } {
    const status = this.statusOf(round);
    return status === 'accepted' || status === 'complete' || status === 'rejected' || status === 'left-out' ? {} : { status: 'sent' };
  }

  /** Our record of a finished round: complete if our update was in it, otherwise why we were not. */
  private resultPatch(event: Extract<RuntimeEvent, { type: 'round-result' }>): Partial<RoundRecord> {
    const status = this.statusOf(event.round) ?? 'announced';
    const contributed = status === 'sent' || status === 'accepted';
    const inFlight = contributed || status === 'approved' || status === 'training' || status === 'announced';
    if (event.status === 'completed') {
      return { sitesReturned: event.sites.length, sitesTotal: event.sitesRegistered, ...(contributed ? { status: 'complete' as const } : inFlight ? { status: 'left-out' as const, reason: 'the round completed without this site' } : {}) };
    }
    return { sitesReturned: 0, sitesTotal: event.sitesRegistered, ...(inFlight ? { status: 'left-out' as const } : {}), reason: `round abandoned: ${event.reason ?? 'not enough sites'}; it will be retried` };
  }

  private reportBackend(): void {
    const info = activeBackend();
    if (info) this.emit({ type: 'backend', backend: { name: info.detail, gpu: info.gpu } });
  }

  private onRuntimeEvent(event: RuntimeEvent): void {
    switch (event.type) {
      case 'connected':
        return this.emit({ type: 'connection', state: { phase: 'connected', siteName: event.site, error: null } });
      case 'disconnected':
        if (!this.runtime) return;
        return this.emit({
          type: 'connection',
          state: { phase: event.retryInMs === null ? 'offline' : 'connecting', waiting: null, error: `Connection to the server lost (${event.reason}); ${event.retryInMs === null ? 'not retrying' : 'reconnecting'}.` },
        });
      case 'approval':
        if (!event.approved && event.reason) {
          return this.emit({ type: 'round', round: event.round, patch: { status: 'declined', reason: event.reason } });
        }
        return;
      case 'training-started':
        this.trainingStart = { round: event.round, at: Date.now() };
        return this.emit({ type: 'round', round: event.round, patch: { status: 'training', contribution: { caseCount: event.numCases, loss: null } } });
      case 'update-sent':
        this.store.appendAudit({
          kind: 'update-sent', at: new Date().toISOString(), round: event.round, serverUrl: this.serverUrl, numCases: event.numCases, bytes: event.bytes, sha256: event.sha256,
        });
        return this.emit({ type: 'round', round: event.round, patch: { ...this.sentStatus(event.round), contribution: { caseCount: event.numCases, loss: event.metrics.loss ?? null } } });
      case 'update-accepted':
        return this.emit({ type: 'round', round: event.round, patch: { status: 'accepted' } });
      case 'update-rejected':
        this.emit({ type: 'log', level: 'error', message: `The server rejected this site's update for round ${event.round}: ${event.reason}` });
        return this.emit({ type: 'round', round: event.round, patch: { status: 'rejected', reason: `The server rejected this site's update: ${event.reason}` } });
      case 'left-out':
        return this.emit({ type: 'round', round: event.round, patch: { status: 'left-out', reason: event.reason } });
      case 'round-result':
        if (event.status === 'completed') this.lastCompletedRound = event.round;
        return this.emit({ type: 'round', round: event.round, patch: this.resultPatch(event) });
      case 'global-metrics':
        return this.emit({ type: 'round', round: event.round, patch: { globalDice: diceOf(event.metrics) } });
      case 'waiting':
        return this.emit({ type: 'connection', state: { waiting: event.message === null ? null : `The server is ${event.message}.` } });
      case 'finished':
        this.emit({ type: 'connection', state: { waiting: null } });
        return this.emit({ type: 'log', level: 'info', message: `The federation finished after ${event.rounds} rounds.` });
      case 'refused':
        // During connect() the rejection says it; later (the operator removed the site) the connection state does.
        return this.emit({ type: 'connection', state: { phase: 'offline', waiting: null, error: refusalMessage(event) } });
      case 'error':
        return this.emit({ type: 'log', level: 'error', message: event.message.length > 300 ? `${event.message.slice(0, 300)}…` : event.message });
      default:
    }
  }
}

function masksKey(cases: TrainingCaseFiles[]): string {
  return cases.map((c) => `${c.id}=${c.maskFile}`).join('\n');
}

/** Each region's Dice out of a flat metrics record (NaN where it is missing). */
function diceOf(metrics: Record<string, number>): RegionScores {
  return regionScores(Object.fromEntries(REGIONS.map((r) => [r, metrics[regionMetricKey('dice', r)] ?? NaN])));
}

function toWebSocketUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
  return u.toString();
}

/** What the admin reads when the server refuses this site, by the refusal's code. */
export function refusalMessage(refusal: Refusal): string {
  switch (refusal.code) {
    case 'unknown-token':
      return 'The server refused this site: the site token is wrong or was revoked. Ask the federation operator for a new token.';
    case 'site-removed':
      return 'The federation operator removed this site, so its token no longer works. Ask the operator whether to rejoin with a new token.';
    case 'protocol-version':
      return `This app and the federation server speak different protocol versions (${refusal.reason}). Update whichever FedSeg is older.`;
    case 'bad-hello':
    case 'hello-timeout':
    case 'frame-before-hello':
      return `The server refused this site: ${refusal.reason}.`;
  }
}

/** Distributed DP: the noise this site adds to its update (the share of the sum's noise calibrated to the threshold). */
export function siteNoiseStdOf(request: Pick<ApprovalRequest, 'privacy' | 'secureAggregation'>): number | null {
  const { privacy, secureAggregation } = request;
  return privacy?.mode === 'distributed' && secureAggregation ? siteNoise(privacy, secureAggregation.threshold).noiseStd : null;
}
