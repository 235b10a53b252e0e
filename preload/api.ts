/**
 * The one definition of `window.fedseg`: request schemas (zod, checked in the main process and in the dev
 * bridge before anything reaches the site runtime), result types and the event stream. The preload script,
 * the browser shim of the dev bridge and the renderer all use these names; the renderer imports this file
 * type-only so zod never ships to the UI.
 */
import { z } from 'zod';
import type { OutgoingMessagePlan } from '../site/outgoing.js';
import { CHANNELS, type Channel } from './channels.js';

export { CHANNELS, EVENT_CHANNEL, IPC_PREFIX, type Channel } from './channels.js';

import { AXES, MASK_SOURCES, MASK_WARNING_CODES, MODALITIES, type MaskSource, type Modality } from './values.js';

export { AXES, MASK_SOURCES, MASK_WARNING_CODES, MODALITIES, type Axis, type MaskSource, type Modality } from './values.js';

const caseId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'not a case id');
const sliceMark = z.enum(['ok', 'wrong']);
const httpUrl = z
  .string()
  .trim()
  .max(2048)
  .refine((s) => /^(wss?|https?):\/\/[^\s]+$/i.test(s), 'must start with ws://, wss://, http:// or https://')
  // The site token travels in the first message: in clear over ws://, so only to this computer.
  .refine((s) => !/^(ws|http):/i.test(s) || isLoopbackUrl(s), 'plain ws:// and http:// only reach this computer (localhost); use wss:// so the site token is encrypted');

function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
  } catch {
    return false;
  }
}

/** Request schema of every channel; the keys are the IPC allow-list. */
export const requestSchemas = {
  getState: z.undefined(),
  /** The strength rule is checked by the runtime (main/service/admin.ts), which says what is missing. */
  setAdminPassphrase: z.object({ current: z.string().max(1024).optional(), next: z.string().max(1024) }),
  unlockAdmin: z.object({ passphrase: z.string().max(1024) }),
  lockAdmin: z.undefined(),
  connect: z.object({ serverUrl: httpUrl, token: z.string().min(1).max(4096).optional() }),
  disconnect: z.undefined(),
  /** A decline carries the admin's reason, which is sent to the server and audited. */
  decideRound: z.object({ round: z.number().int().nonnegative(), approve: z.boolean(), reason: z.string().trim().max(500).optional() })
    .refine((q) => q.approve || (q.reason ?? '').length > 0, { message: 'say why the round is declined', path: ['reason'] }),
  chooseFolder: z.undefined(),
  importFolder: z.object({ path: z.string().min(1).max(4096) }),
  listCases: z.undefined(),
  /** `version` picks a final mask version (kind 'final'); without it the version in use. */
  readVolume: z.object({ caseId, kind: z.enum([...MODALITIES, ...MASK_SOURCES]), version: z.number().int().positive().optional() }),
  predict: z.object({ caseId }),
  saveFinalMask: z.object({
    caseId,
    nifti: z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be the bytes of a NIfTI file'),
    /** The mask the edits started from. */
    source: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('truth') }), z.object({ kind: z.literal('prediction') }), z.object({ kind: z.literal('blank') }),
      z.object({ kind: z.literal('final'), version: z.number().int().positive() }),
    ]),
    /** Plausibility warnings the reviewer accepted, by code; saving fails while any warning is not named here. */
    confirm: z.array(z.enum(MASK_WARNING_CODES)).max(MASK_WARNING_CODES.length),
  }),
  /** Puts a final mask version in use (revert), or the ground truth with null. */
  chooseFinalMask: z.object({ caseId, version: z.number().int().positive().nullable() }),
  setSliceMark: z.object({ caseId, axis: z.enum(AXES), slice: z.number().int().nonnegative().max(4096), mark: sliceMark.nullable() }),
  getReview: z.object({ caseId }),
} as const satisfies { [C in Channel]: z.ZodType };
export type RequestOf<C extends Channel> = z.infer<(typeof requestSchemas)[C]>;

export type Role = 'reviewer' | 'admin';
export type ConnectionPhase = 'offline' | 'connecting' | 'connected' | 'error';

export interface ConnectionState {
  phase: ConnectionPhase;
  serverUrl: string | null;
  /** Site name the server knows this token by, once authenticated. */
  siteName: string | null;
  /** Plain-words reason for the last failure (wrong token, server unreachable, ...). */
  error: string | null;
  /** What the federation server is waiting for ("waiting for 1 more site (2 of minSites 3 connected)"), if anything. */
  waiting: string | null;
}

export type RoundStatus =
  | 'announced' | 'approved' | 'declined' | 'training' | 'sent' | 'accepted' | 'rejected' | 'left-out' | 'complete';

export interface RegionScores { et: number; tc: number; wt: number }

/** One message of what leaves the site, as site/outgoing.ts builds it from the same code as the messages. */
export type { OutgoingMessagePlan };

/** As announced by the server (core/federation/protocol.ts RoundPrivacySchema). */
export interface RoundPrivacyInfo {
  mode: 'central' | 'distributed';
  clip: number;
  noiseMultiplier: number;
  delta: number;
  epsilonSoFar: number;
  epsilonAfterRound: number;
  budget: { epsilon: number; delta: number };
}

/** Everything the admin is shown before deciding a round. */
export interface ApprovalInfo {
  attempt: number;
  totalRounds: number;
  strategy: string;
  model: { arch: string; baseFilters: number; depth: number; parameterCount: number; updateBytes: number };
  instructions: { epochs: number; learningRate: number; batchSize: number; mu: number; seed: number };
  trainingCases: number;
  validationCases: number;
  trainingDeadlineS: number;
  outgoing: OutgoingMessagePlan[];
  minMetricCases: number;
  /** Differential privacy of the round (clip, noise, epsilon so far and after it); null without DP. */
  privacy: RoundPrivacyInfo | null;
  /** Distributed DP: the standard deviation of the Gaussian noise this site adds to its clipped update; null otherwise. */
  siteNoiseStd: number | null;
  /** The server's own description of what leaves the site. */
  serverDescription: string[];
  /** Why this round is announced again, for attempts after the first. */
  retryNote: string | null;
}

export interface RoundRecord {
  round: number;
  status: RoundStatus;
  /** ISO time by which the admin must decide. */
  deadline: string | null;
  /** What the admin was shown for this round's latest announcement. */
  approval: ApprovalInfo | null;
  /** Sites whose updates made it into the global model, and how many are registered (null until known). */
  sitesReturned: number | null;
  sitesTotal: number | null;
  /** This site's contribution: cases trained on and its last local loss. */
  contribution: { caseCount: number; loss: number | null } | null;
  /** Global model Dice per region on this site's held-out cases, once the round is aggregated. */
  globalDice: RegionScores | null;
  /** Why the site was left out or its update rejected. */
  reason: string | null;
}

export interface TrainingProgress {
  round: number;
  /** Current epoch, 1-based. */
  epoch: number;
  epochs: number;
  /** Step within the epoch when the trainer reports it (else 0 of 0). */
  step: number;
  steps: number;
  loss: number;
  /** Share of the round's local training done, 0..1. */
  fraction: number;
  etaSeconds: number | null;
}

/** One line of the site's append-only audit: round decisions, final-mask saves and reverts, masks used per round. */
export type AuditEntry =
  /** `attempt` and `by` (the admin's OS user) are absent from entries written before they were recorded. */
  | { kind: 'round-decision'; at: string; round: number; attempt?: number; decision: 'approved' | 'declined'; by?: string; caseCount: number; serverUrl: string; reason?: string }
  | { kind: 'update-sent'; at: string; round: number; serverUrl: string; numCases: number; bytes: number; sha256: string }
  | { kind: 'final-mask'; at: string; caseId: string; action: 'saved' | 'chosen'; version: number | null; by: string; detail: string }
  | { kind: 'training-masks'; at: string; round: number; masks: Array<{ caseId: string; mask: string }> };

export interface MaskWarning { code: (typeof MASK_WARNING_CODES)[number]; message: string }

/** Where a final mask came from: what the reviewer started editing. */
export type MaskProvenance =
  | { kind: 'truth' }
  | { kind: 'prediction'; round: number | null; modelSha256: string | null }
  | { kind: 'blank' }
  | { kind: 'final'; version: number };

export interface MaskComparison {
  volumesMl: RegionScores;
  sourceVolumesMl: RegionScores;
  /** Dice per region against the source; null when the source is a blank mask. */
  diceVsSource: RegionScores | null;
}

export interface MaskVersion extends MaskComparison {
  version: number;
  savedAt: string;
  savedBy: string;
  source: MaskProvenance;
  confirmedWarnings: MaskWarning[];
}

export interface MaskVersions {
  /** Version used for training; null: the case's ground truth. */
  chosen: number | null;
  versions: MaskVersion[];
}

export type SaveFinalResult =
  | { saved: true; summary: CaseSummary; version: MaskVersion }
  | { saved: false; comparison: MaskComparison; warnings: MaskWarning[] };

export interface CaseIssue { severity: 'error' | 'warning'; message: string }

export type CaseStatus = 'not-reviewed' | 'in-review' | 'final';

export interface CaseSummary {
  id: string;
  dir: string;
  /** Which volumes exist for the case. */
  has: Record<Modality | MaskSource, boolean>;
  status: CaseStatus;
  issues: CaseIssue[];
  /** Used for training: has a final or a ground-truth mask and no validation error. */
  trainable: boolean;
  /** Prediction against ground truth, when both exist. */
  metrics: { dice: RegionScores; hd95: RegionScores } | null;
  /** Saved final mask versions and the one in use. */
  finalMasks: MaskVersions;
  /** The global model the current prediction came from. */
  prediction: { round: number | null; modelSha256: string | null } | null;
}

export interface VolumeInfoMl { et: number; tc: number; wt: number }

export interface PredictionResult { caseSummary: CaseSummary; volumesMl: VolumeInfoMl; seconds: number; backend: string }

export interface ReviewState {
  caseId: string;
  /** `${axis}:${slice}` -> mark. */
  marks: Record<string, 'ok' | 'wrong'>;
}

export interface AppState {
  /** Increases with every change; the UI keeps the newest, since replies and events can arrive out of order. */
  revision: number;
  role: Role;
  adminPassphraseSet: boolean;
  /** The UI locks admin mode after this many seconds without input. */
  adminIdleSeconds: number;
  connection: ConnectionState;
  /** Saved server URL and whether a token is stored (never the token itself). */
  saved: { serverUrl: string | null; hasToken: boolean; tokenEncrypted: boolean };
  rounds: RoundRecord[];
  pendingRound: RoundRecord | null;
  audit: AuditEntry[];
  training: TrainingProgress | null;
  lossHistory: Array<{ round: number; step: number; loss: number }>;
  backend: { name: string; gpu: boolean } | null;
  dataFolder: string | null;
  capabilities: { folderDialog: boolean; shell: 'electron' | 'browser' };
}

export interface ResultMap {
  getState: AppState;
  setAdminPassphrase: AppState;
  unlockAdmin: AppState;
  lockAdmin: AppState;
  connect: AppState;
  disconnect: AppState;
  decideRound: AppState;
  chooseFolder: string | null;
  importFolder: CaseSummary[];
  listCases: CaseSummary[];
  readVolume: Uint8Array;
  predict: PredictionResult;
  saveFinalMask: SaveFinalResult;
  chooseFinalMask: CaseSummary;
  setSliceMark: ReviewState;
  getReview: ReviewState;
}

/** Pushed from the site runtime to the UI; the renderer refetches state or appends to charts. */
export type SiteEvent =
  | { type: 'state'; state: AppState }
  | { type: 'progress'; progress: TrainingProgress }
  | { type: 'log'; level: 'info' | 'warning' | 'error'; message: string };

/** Errors crossing the boundary carry only a plain-words message. */
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: string };

export type FedsegApi = { [C in Channel]: RequestOf<C> extends undefined ? () => Promise<ResultMap[C]> : (req: RequestOf<C>) => Promise<ResultMap[C]> } & {
  /** Subscribes to site events; returns the unsubscribe function. */
  onEvent(listener: (event: SiteEvent) => void): () => void;
};

/** Parses a request for a channel, turning a zod failure into one plain sentence. */
export function parseRequest<C extends Channel>(channel: C, arg: unknown): RequestOf<C> {
  const result = requestSchemas[channel].safeParse(arg);
  if (result.success) return result.data as RequestOf<C>;
  const issue = result.error.issues[0];
  const field = issue?.path.join('.') || 'request';
  throw new RequestError(`${field}: ${issue?.message ?? 'invalid'}`);
}

export function isChannel(name: string): name is Channel {
  return (CHANNELS as readonly string[]).includes(name);
}

/** A request the UI sent that does not match its schema. */
export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}
