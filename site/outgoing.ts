/**
 * Everything a site sends after connecting, built in one place: the update frame header, the evaluation
 * message and the training progress message, and the list an approval shows of what those messages will carry.
 * The list is made by calling the same builders with the round's known counts, so it names exactly the fields
 * and metric keys the real messages then carry (values are unknown before training; keys are not).
 *
 * Privacy floor (SPEC "What leaves a site"): metrics that describe fewer than `minMetricCases` cases are not
 * sent, in every message that carries any: the update's training metrics, the evaluation's held-out
 * metrics and the progress message's running loss (over the training cases). The messages still carry
 * their case counts.
 */
import type { RoundPrivacy, SecureRound, SiteMessage, UpdateFrameHeader } from '../core/federation/protocol.js';
import { siteNoise } from '../core/privacy/dp-aggregation.js';

type EvaluationMessage = Extract<SiteMessage, { type: 'evaluation' }>;
type TrainingProgressMessage = Extract<SiteMessage, { type: 'progress' }>;

/** SPEC's default k: per-site metrics over fewer cases than this stay at the site. */
export const DEFAULT_MIN_METRIC_CASES = 5;

/** Metric keys a trainer reports: after local training (with the update) and per global model (evaluation). */
export interface MetricKeys { update: readonly string[]; evaluation: readonly string[] }

/** The metrics a message carries: the declared keys only, finite values only, none below the case floor. */
export function outgoingMetrics(metrics: Record<string, number>, declared: readonly string[], numCases: number, minCases: number): Record<string, number> {
  if (numCases < minCases) return {};
  return Object.fromEntries(declared.filter((k) => Number.isFinite(metrics[k])).map((k) => [k, metrics[k]]));
}

export function updateHeader(
  args: { round: number; attempt: number; architectureHash: string; numCases: number; metrics: Record<string, number>; trainingSeconds: number; norm: number },
  keys: MetricKeys, minCases: number,
): UpdateFrameHeader {
  return {
    kind: 'update', round: args.round, attempt: args.attempt, architectureHash: args.architectureHash, numCases: args.numCases,
    metrics: outgoingMetrics(args.metrics, keys.update, args.numCases, minCases), trainingSeconds: args.trainingSeconds,
    norm: Number.isFinite(args.norm) ? args.norm : undefined,
  };
}

export function evaluationMessage(round: number, numCases: number, metrics: Record<string, number>, keys: MetricKeys, minCases: number): EvaluationMessage {
  return { type: 'evaluation', round, numCases, metrics: outgoingMetrics(metrics, keys.evaluation, numCases, minCases) };
}

/** `numCases`: the training cases the running loss is over. */
export function progressMessage(round: number, p: { epoch: number; epochs: number; loss?: number }, numCases: number, minCases: number): TrainingProgressMessage {
  const sendLoss = p.loss !== undefined && Number.isFinite(p.loss) && numCases >= minCases;
  return { type: 'progress', round, epoch: p.epoch, epochs: p.epochs, ...(sendLoss ? { loss: p.loss } : {}) };
}

/** One message of the plan: when it goes, the fields it carries, and metric keys held back by the floor. */
export interface OutgoingMessagePlan {
  message: 'update' | 'progress' | 'evaluation';
  /** Fields besides the protocol's own (type, round, attempt, architecture hash), e.g. "numCases", "metrics.loss". */
  fields: string[];
  /** Declared metric keys not sent because they would describe fewer than `minCases` cases. */
  withheld: string[];
  /** Cases the message describes. */
  numCases: number | null;
}

/** Protocol bookkeeping every message carries; not data about the site. */
const BOOKKEEPING = new Set(['kind', 'type', 'round', 'attempt', 'architectureHash']);

function fieldsOf(message: object): string[] {
  return Object.entries(message).flatMap(([key, value]) => {
    if (BOOKKEEPING.has(key) || value === undefined) return [];
    if (key === 'metrics') return Object.keys(value as object).map((k) => `metrics.${k}`);
    return [key];
  });
}

/**
 * What an approved round sends (the update after training, progress during it) and what every completed round
 * sends whether approved or not (the evaluation of the new global model), for these case counts. In a secure
 * round (core/privacy) the update is a masked vector carrying no metrics, and progress carries no loss.
 */
export function outgoingPlan(counts: { train: number; validation: number }, keys: MetricKeys, minCases: number, secure = false): OutgoingMessagePlan[] {
  const sample = (declared: readonly string[]) => Object.fromEntries(declared.map((k) => [k, 0]));
  const update = updateHeader({ round: 0, attempt: 1, architectureHash: '', numCases: counts.train, metrics: sample(keys.update), trainingSeconds: 0, norm: 0 }, keys, minCases);
  const evaluation = evaluationMessage(0, counts.validation, sample(keys.evaluation), keys, minCases);
  const progress = progressMessage(0, { epoch: 1, epochs: 1, loss: 0 }, counts.train, minCases);
  const withheld = (declared: readonly string[], sent: Record<string, number>) => declared.filter((k) => !(k in sent));
  const evaluationPlan: OutgoingMessagePlan = { message: 'evaluation', fields: fieldsOf(evaluation), withheld: withheld(keys.evaluation, evaluation.metrics), numCases: counts.validation };
  if (secure) {
    return [
      { message: 'update', fields: ['maskedWeights', 'maskedNumCases'], withheld: [...keys.update], numCases: counts.train },
      { message: 'progress', fields: fieldsOf(progressMessage(0, { epoch: 1, epochs: 1 }, counts.train, minCases)), withheld: [], numCases: null },
      evaluationPlan,
    ];
  }
  return [
    { message: 'update', fields: ['weights', ...fieldsOf(update)], withheld: withheld(keys.update, update.metrics), numCases: counts.train },
    { message: 'progress', fields: fieldsOf(progress), withheld: 'loss' in progress ? [] : ['loss'], numCases: counts.train },
    evaluationPlan,
  ];
}

/** The approval's account of a DP round in words (the `fedseg site` prompt; the app shows the same numbers). */
export function privacyLines(p: RoundPrivacy, secure?: SecureRound): string[] {
  const noise = p.mode === 'central'
    ? `the server adds Gaussian noise of standard deviation ${formatNumber(p.noiseMultiplier * p.clip)} (${formatNumber(p.noiseMultiplier)} x the clip) to the sum of updates`
    : `this site adds Gaussian noise of standard deviation ${secure ? formatNumber(siteNoise(p, secure.threshold).noiseStd) : '(unknown: no secure aggregation announced)'} before secure aggregation masks the update, so that any ${secure?.threshold ?? 't'} sites' sum carries ${formatNumber(p.noiseMultiplier * p.clip)} (${formatNumber(p.noiseMultiplier)} x the clip)`;
  return [
    `Differential privacy (${p.mode}): the update is clipped to L2 norm ${formatNumber(p.clip)} before it leaves; ${noise}.`,
    `Privacy spent by the released models: epsilon ${formatNumber(p.epsilonSoFar)} so far, ${formatNumber(p.epsilonAfterRound)} after this round (delta ${p.delta}); budget epsilon ${formatNumber(p.budget.epsilon)} at delta ${p.budget.delta}.`,
  ];
}

function formatNumber(n: number): string {
  return Number(n.toPrecision(3)).toString();
}
