/**
 * Everything this site keeps locally: connection settings (never the token: the host keeps that encrypted),
 * the admin passphrase hash, the data folder, review marks per case, the round history and the audit list
 * (approval decisions, final-mask saves and reverts, which mask each case trained with). One JSON file per concern under the site's data directory.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { AuditEntry, RoundRecord, TrainingProgress } from '../../preload/api.js';
import { FedSegError } from '../../core/errors.js';
import { RoundPrivacySchema } from '../../core/federation/protocol.js';
import { DEFAULT_MIN_METRIC_CASES } from '../../site/outgoing.js';
import { readJson, writeJsonAtomic } from './json-store.js';

const PassphraseSchema = z.object({ salt: z.string(), hash: z.string(), n: z.number().int().positive() });
export type PassphraseHash = z.infer<typeof PassphraseSchema>;

/** Admin mode locks itself after this long without input (settings.adminIdleSeconds). */
const DEFAULT_ADMIN_IDLE_S = 10 * 60;

const SettingsSchema = z.object({
  version: z.literal(1),
  serverUrl: z.string().nullable(),
  adminPassphrase: PassphraseSchema.nullable(),
  dataFolder: z.string().nullable(),
  /** Latest global model this site received, used for on-demand predictions. */
  modelPath: z.string().nullable(),
  /** Per-site metrics describing fewer cases than this are not sent (SPEC "What leaves a site"). */
  minMetricCases: z.number().int().min(1).default(DEFAULT_MIN_METRIC_CASES),
  /** Wrong admin passphrases in a row and the time (epoch ms) before which no attempt is accepted. */
  adminThrottle: z.object({ failures: z.number().int().nonnegative(), lockedUntil: z.number() }).default({ failures: 0, lockedUntil: 0 }),
  /** Admin mode locks itself after this long without input in the app. */
  adminIdleSeconds: z.number().int().min(1).default(DEFAULT_ADMIN_IDLE_S),
});
export type Settings = z.infer<typeof SettingsSchema>;

const Scores = z.object({ et: z.number(), tc: z.number(), wt: z.number() });
const RoundSchema = z.object({
  round: z.number().int().nonnegative(),
  status: z.enum(['announced', 'approved', 'declined', 'training', 'sent', 'accepted', 'rejected', 'left-out', 'complete']),
  deadline: z.string().nullable(),
  approval: z.object({
    attempt: z.number().int(), totalRounds: z.number().int(), strategy: z.string(),
    model: z.object({ arch: z.string(), baseFilters: z.number(), depth: z.number(), parameterCount: z.number(), updateBytes: z.number() }),
    instructions: z.object({ epochs: z.number(), learningRate: z.number(), batchSize: z.number(), mu: z.number(), seed: z.number() }),
    trainingCases: z.number().int(), validationCases: z.number().int(), trainingDeadlineS: z.number(),
    outgoing: z.array(z.object({
      message: z.enum(['update', 'progress', 'evaluation']), fields: z.array(z.string()), withheld: z.array(z.string()), numCases: z.number().nullable(),
    })),
    minMetricCases: z.number().int(), serverDescription: z.array(z.string()), retryNote: z.string().nullable(),
    // Older history files have no privacy entry: those rounds ran without DP.
    privacy: RoundPrivacySchema.nullable().default(null),
    // Older history files predate showing the site's own noise.
    siteNoiseStd: z.number().nonnegative().nullable().default(null),
  }).nullable().default(null),
  sitesReturned: z.number().nullable(),
  sitesTotal: z.number().nullable(),
  contribution: z.object({ caseCount: z.number(), loss: z.number().nullable() }).nullable(),
  globalDice: Scores.nullable(),
  reason: z.string().nullable(),
}) satisfies z.ZodType<RoundRecord>;
const HistorySchema = z.object({
  rounds: z.array(RoundSchema),
  loss: z.array(z.object({ round: z.number(), step: z.number(), loss: z.number() })),
});
const ReviewSchema = z.record(z.string(), z.record(z.string(), z.enum(['ok', 'wrong'])));
const AuditSchema = z.preprocess(
  // Lines written before the audit had kinds are round decisions.
  (line) => (typeof line === 'object' && line !== null && !('kind' in line) ? { ...line, kind: 'round-decision' } : line),
  z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('round-decision'), at: z.string(), round: z.number().int(), attempt: z.number().int().optional(), decision: z.enum(['approved', 'declined']),
      by: z.string().optional(), caseCount: z.number().int(), serverUrl: z.string(), reason: z.string().optional(),
    }),
    z.object({
      kind: z.literal('update-sent'), at: z.string(), round: z.number().int(), serverUrl: z.string(), numCases: z.number(), bytes: z.number().int(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    }),
    z.object({
      kind: z.literal('final-mask'), at: z.string(), caseId: z.string(), action: z.enum(['saved', 'chosen']),
      version: z.number().int().nullable(), by: z.string(), detail: z.string(),
    }),
    z.object({
      kind: z.literal('training-masks'), at: z.string(), round: z.number().int(), masks: z.array(z.object({ caseId: z.string(), mask: z.string() })),
    }),
  ]),
) satisfies z.ZodType<AuditEntry>;

const DEFAULT_SETTINGS: Settings = {
  version: 1, serverUrl: null, adminPassphrase: null, dataFolder: null, modelPath: null, minMetricCases: DEFAULT_MIN_METRIC_CASES,
  adminThrottle: { failures: 0, lockedUntil: 0 }, adminIdleSeconds: DEFAULT_ADMIN_IDLE_S,
};
/** Loss points kept for the curve; older ones are thinned out by the chart anyway. */
const MAX_LOSS_POINTS = 5000;

export class SiteStore {
  readonly dir: string;
  settings: Settings;
  rounds: RoundRecord[];
  loss: Array<{ round: number; step: number; loss: number }>;
  review: Record<string, Record<string, 'ok' | 'wrong'>>;
  audit: AuditEntry[];

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.settings = readJson(this.path('settings.json'), SettingsSchema, DEFAULT_SETTINGS);
    const history = readJson(this.path('history.json'), HistorySchema, { rounds: [], loss: [] });
    this.rounds = history.rounds;
    this.loss = history.loss;
    this.review = readJson(this.path('review.json'), ReviewSchema, {});
    this.audit = this.readAudit();
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  saveSettings(patch: Partial<Settings>): void {
    this.settings = { ...this.settings, ...patch };
    writeJsonAtomic(this.path('settings.json'), this.settings);
  }

  saveHistory(): void {
    if (this.loss.length > MAX_LOSS_POINTS) this.loss = this.loss.slice(-MAX_LOSS_POINTS);
    writeJsonAtomic(this.path('history.json'), { rounds: this.rounds, loss: this.loss });
  }

  saveReview(): void {
    writeJsonAtomic(this.path('review.json'), this.review);
  }

  /** Append-only: one JSON line per decision, final-mask save or revert and round's training masks; never rewritten. */
  appendAudit(entry: AuditEntry): void {
    const parsed = AuditSchema.parse(entry);
    appendFileSync(this.path('audit.jsonl'), `${JSON.stringify(parsed)}\n`, { mode: 0o600 });
    this.audit.push(parsed);
  }

  upsertRound(round: number, patch: Partial<RoundRecord>): RoundRecord {
    let record = this.rounds.find((r) => r.round === round);
    if (!record) {
      record = {
        round, status: 'announced', deadline: null, approval: null, sitesReturned: null, sitesTotal: null,
        contribution: null, globalDice: null, reason: null,
      };
      this.rounds.push(record);
      this.rounds.sort((a, b) => a.round - b.round);
    }
    Object.assign(record, patch);
    this.saveHistory();
    return record;
  }

  recordLoss(progress: TrainingProgress): void {
    if (Number.isFinite(progress.loss)) this.loss.push({ round: progress.round, step: this.loss.length + 1, loss: progress.loss });
  }

  private readAudit(): AuditEntry[] {
    const file = this.path('audit.jsonl');
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '').map((line, i) => {
      const parsed = AuditSchema.safeParse(JSON.parse(line));
      if (!parsed.success) throw new FedSegError(`line ${i + 1} is not an audit entry`, { file });
      return parsed.data;
    });
  }
}
