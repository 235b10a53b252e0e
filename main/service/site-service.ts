/**
 * The site runtime as the desktop app sees it: local settings and audit, the admin role, the case library
 * with review marks and final masks, on-demand predictions, and the federation link with its approval hook.
 * Runs in its own process (utilityProcess in Electron, a child process under the dev bridge).
 */
import { userInfo } from 'node:os';
import type {
  AppState, Channel, ConnectionState, Envelope, RequestOf, ResultMap, ReviewState, RoundRecord, SiteEvent, TrainingProgress,
} from '../../preload/api.js';
import { parseRequest } from '../../preload/api.js';
import { afterFailure, hashPassphrase, passphraseProblem, verifyPassphrase, waitSeconds } from './admin.js';
import { CaseLibrary, type TrainingCaseFiles } from './cases.js';
import { plainMessage, UserFacingError } from './errors.js';
import { FederationLink, type FederationEvent } from './federation-link.js';
import { predictCase } from './predict.js';
import { createDataDirTrainer } from '../../site/trainer.js';
import { SiteStore } from './site-store.js';

/** Requests that need the case library loaded. */
const CASE_CHANNELS = new Set<Channel>(['connect', 'listCases', 'readVolume', 'predict', 'saveFinalMask', 'chooseFinalMask', 'setSliceMark', 'getReview']);

export class SiteService {
  private readonly store: SiteStore;
  private readonly cases: CaseLibrary;
  private readonly federation: FederationLink;
  private role: 'reviewer' | 'admin' = 'reviewer';
  private connection: ConnectionState;
  private training: TrainingProgress | null = null;
  private backend: AppState['backend'] = null;
  private revision = 0;
  private casesReady: Promise<void> = Promise.resolve();
  /** Last request from the UI; admin mode ends after 3x the idle time without any (the UI locks sooner on no input). */
  private lastRequest = Date.now();

  constructor(dataDir: string, private readonly emit: (event: SiteEvent) => void, private readonly log: (message: string) => void) {
    this.store = new SiteStore(dataDir);
    this.cases = new CaseLibrary(this.store);
    // The shared site trainer over exactly the cases the app approved, each with the mask chosen here.
    const makeTrainer = (cases: TrainingCaseFiles[]) => createDataDirTrainer({
      trainDirs: cases.map((c) => c.dir), maskFiles: new Map(cases.map((c) => [c.id, c.maskFile])),
    });
    this.federation = new FederationLink(this.store, makeTrainer, (event) => this.onFederationEvent(event));
    this.connection = { phase: 'offline', serverUrl: this.store.settings.serverUrl, siteName: null, error: null, waiting: null };
    // Rounds that were waiting for a decision when the app closed can no longer be decided.
    for (const record of this.store.rounds) {
      if (record.status === 'announced' || record.status === 'training' || record.status === 'approved') {
        this.store.upsertRound(record.round, { status: 'left-out', reason: 'the app was closed during the round' });
      }
    }
  }

  /** Re-reads the last imported folder in the background; case requests wait for it, the rest answer at once. */
  init(): void {
    const folder = this.store.settings.dataFolder;
    if (!folder) return;
    this.casesReady = this.cases.load(folder).then(
      () => undefined,
      (err: unknown) => this.emit({ type: 'log', level: 'warning', message: `The case folder ${folder} could not be re-read: ${plainMessage(err).message}` }),
    );
  }

  async call(channel: Channel, arg: unknown): Promise<Envelope<unknown>> {
    try {
      const now = Date.now();
      if (this.role === 'admin' && now - this.lastRequest > 3 * this.store.settings.adminIdleSeconds * 1000) this.role = 'reviewer';
      this.lastRequest = now;
      const request = parseRequest(channel, arg);
      if (CASE_CHANNELS.has(channel)) await this.casesReady;
      return { ok: true, value: await this.handle(channel, request) };
    } catch (err) {
      const { message, known } = plainMessage(err);
      if (!known) this.log((err as Error)?.stack ?? String(err));
      return { ok: false, error: message };
    }
  }

  async shutdown(): Promise<void> {
    await this.federation.disconnect();
  }

  private async handle<C extends Channel>(channel: C, req: RequestOf<C>): Promise<ResultMap[C]> {
    const r = req as never;
    const handlers: { [K in Channel]: (req: RequestOf<K>) => Promise<ResultMap[K]> | ResultMap[K] } = {
      getState: () => this.state(),
      setAdminPassphrase: (q) => this.setPassphrase(q.current, q.next),
      unlockAdmin: (q) => this.unlock(q.passphrase),
      lockAdmin: () => {
        this.role = 'reviewer';
        return this.state();
      },
      connect: (q) => this.connect(q.serverUrl, q.token ?? ''),
      disconnect: async () => {
        this.requireAdmin('disconnect from the federation');
        await this.federation.disconnect();
        return this.state();
      },
      decideRound: (q) => this.decide(q.round, q.approve, q.reason),
      chooseFolder: () => null,
      importFolder: async (q) => {
        const summaries = await this.cases.load(q.path);
        this.store.saveSettings({ dataFolder: q.path });
        this.federation.setCases(this.cases.trainingCases());
        this.publishState();
        return summaries;
      },
      listCases: () => this.cases.summaries(),
      readVolume: (q) => this.cases.readVolume(q.caseId, q.kind, q.version),
      predict: (q) => predictCase(this.cases, this.store, q.caseId),
      saveFinalMask: async (q) => {
        const result = await this.cases.saveFinalMask(q);
        if (result.saved) this.onCasesChanged();
        return result;
      },
      chooseFinalMask: (q) => {
        const summary = this.cases.chooseFinalMask(q.caseId, q.version);
        this.onCasesChanged();
        return summary;
      },
      setSliceMark: (q) => this.cases.setSliceMark(q.caseId, `${q.axis}:${q.slice}`, q.mark),
      getReview: (q): ReviewState => this.cases.review(q.caseId),
    };
    return (handlers[channel] as (req: never) => Promise<ResultMap[C]>)(r);
  }

  /** A final mask was saved or reverted: the next round trains with it, and the audit shows it. */
  private onCasesChanged(): void {
    this.federation.setCases(this.cases.trainingCases());
    this.publishState();
  }

  private state(): AppState {
    const pending = this.store.rounds.find((r) => r.status === 'announced') ?? null;
    return {
      revision: ++this.revision,
      role: this.role,
      adminPassphraseSet: this.store.settings.adminPassphrase !== null,
      adminIdleSeconds: this.store.settings.adminIdleSeconds,
      connection: { ...this.connection },
      saved: { serverUrl: this.store.settings.serverUrl, hasToken: false, tokenEncrypted: false },
      rounds: this.store.rounds.map((r) => ({ ...r })),
      pendingRound: pending ? { ...pending } : null,
      audit: [...this.store.audit],
      training: this.training,
      lossHistory: this.store.loss,
      backend: this.backend,
      dataFolder: this.store.settings.dataFolder,
      capabilities: { folderDialog: false, shell: 'browser' },
    };
  }

  private publishState(): void {
    this.emit({ type: 'state', state: this.state() });
  }

  private requireAdmin(action: string): void {
    if (this.role !== 'admin') throw new UserFacingError(`Only the site admin can ${action}. Unlock admin mode with the admin passphrase.`);
  }

  private setPassphrase(current: string | undefined, next: string): AppState {
    const stored = this.store.settings.adminPassphrase;
    if (stored) this.checkPassphrase(current ?? '', stored, 'The current admin passphrase is wrong.');
    const problem = passphraseProblem(next);
    if (problem) throw new UserFacingError(`The new admin passphrase is too weak: ${problem}.`);
    this.store.saveSettings({ adminPassphrase: hashPassphrase(next) });
    this.role = 'admin';
    return this.state();
  }

  private unlock(passphrase: string): AppState {
    const stored = this.store.settings.adminPassphrase;
    if (!stored) throw new UserFacingError('No admin passphrase is set yet. Set one first.');
    this.checkPassphrase(passphrase, stored, 'Wrong admin passphrase.');
    this.role = 'admin';
    return this.state();
  }

  /** Refuses while backing off; a wrong guess lengthens the back-off, a right one clears it. */
  private checkPassphrase(passphrase: string, stored: NonNullable<SiteStore['settings']['adminPassphrase']>, wrong: string): void {
    const now = Date.now();
    const wait = waitSeconds(this.store.settings.adminThrottle, now);
    if (wait > 0) throw new UserFacingError(`Too many wrong admin passphrases. Try again in ${wait} s.`);
    if (verifyPassphrase(passphrase, stored)) {
      if (this.store.settings.adminThrottle.failures > 0) this.store.saveSettings({ adminThrottle: { failures: 0, lockedUntil: 0 } });
      return;
    }
    const throttle = afterFailure(this.store.settings.adminThrottle, now);
    this.store.saveSettings({ adminThrottle: throttle });
    const next = waitSeconds(throttle, now);
    throw new UserFacingError(next > 0 ? `${wrong} The next attempt is accepted in ${next} s.` : wrong);
  }

  private async connect(serverUrl: string, token: string): Promise<AppState> {
    this.requireAdmin('connect the site to a federation');
    if (this.cases.trainingCases().length === 0) {
      throw new UserFacingError('Import a BraTS folder with at least one case that has a ground-truth or final mask before joining a federation.');
    }
    this.store.saveSettings({ serverUrl });
    this.federation.setCases(this.cases.trainingCases());
    this.connection = { phase: 'connecting', serverUrl, siteName: null, error: null, waiting: null };
    this.publishState();
    try {
      const { siteName } = await this.federation.connect(serverUrl, token);
      // Keep what the server already said it waits for: that message can arrive before this line runs.
      this.connection = { ...this.connection, phase: 'connected', serverUrl, siteName, error: null };
    } catch (err) {
      this.connection = { phase: 'error', serverUrl, siteName: null, error: plainMessage(err).message, waiting: null };
      this.publishState();
      throw err;
    }
    return this.state();
  }

  private decide(round: number, approve: boolean, reason: string | undefined): AppState {
    this.requireAdmin('approve or decline a round');
    const record = this.store.rounds.find((r) => r.round === round);
    if (!record || record.status !== 'announced') throw new UserFacingError(`Round ${round} is not waiting for a decision.`);
    const declineReason = approve ? undefined : `declined by the site admin: ${reason}`;
    this.federation.decide(round, { approve, reason: declineReason });
    this.store.appendAudit({
      kind: 'round-decision', at: new Date().toISOString(), round, attempt: record.approval?.attempt ?? 1, decision: approve ? 'approved' : 'declined',
      by: userInfo().username, caseCount: record.approval?.trainingCases ?? 0, serverUrl: this.connection.serverUrl ?? '', ...(approve ? {} : { reason }),
    });
    this.store.upsertRound(round, { status: approve ? 'approved' : 'declined', reason: declineReason ?? null });
    return this.state();
  }

  private onFederationEvent(event: FederationEvent): void {
    switch (event.type) {
      case 'connection':
        this.connection = { ...this.connection, ...event.state };
        break;
      case 'round':
        this.applyRound(event.round, event.patch);
        break;
      case 'progress':
        this.training = event.progress;
        this.store.recordLoss(event.progress);
        this.emit({ type: 'progress', progress: event.progress });
        return;
      case 'backend':
        this.backend = event.backend;
        break;
      case 'model':
        this.store.saveSettings({ modelPath: event.path });
        break;
      case 'log':
        this.emit({ type: 'log', level: event.level, message: event.message });
        return;
    }
    this.publishState();
  }

  private applyRound(round: number, patch: Partial<RoundRecord>): void {
    if (patch.status && patch.status !== 'training') this.training = patch.status === 'sent' ? this.training : null;
    this.store.upsertRound(round, patch);
  }
}
