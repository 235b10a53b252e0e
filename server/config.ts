import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FedSegError } from '../core/errors.js';
import { frameCapFor, MAX_FRAME_BYTES, minimumFrameCapFor } from '../core/federation/protocol.js';
import { DEFAULT_CLIP_POLICY } from '../core/federation/bound-updates.js';
import { StrategyConfigSchema } from '../core/federation/strategies/index.js';
import { PrivacyConfigSchema, type PrivacyConfig } from '../core/privacy/config.js';
import { ModelConfigOverridesSchema, ModelConfigSchema, withModelDefaults, type ModelConfig } from '../core/model/config.js';
import { parameterCount } from '../core/model/parameters.js';

/**
 * The federation config file (JSON). `model` holds overrides on the original project's U-Net
 * (e.g. {"arch": "attention-unet", "baseFilters": 8, "depth": 3, "inputShape": [64, 64, 64]}).
 */
export const FederationConfigSchema = z.object({
  model: ModelConfigOverridesSchema.default({}),
  rounds: z.int().positive().max(10_000),
  localEpochs: z.int().positive().max(1000).default(1),
  learningRate: z.number().positive().max(1).default(1e-4),
  batchSize: z.int().positive().max(64).default(2),
  strategy: StrategyConfigSchema.default({ name: 'fedavg' }),
  minSites: z.int().positive().default(1),
  /** Norm clipping of every update before the strategy sees it (core/federation/bound-updates.ts). */
  clipping: z.object({
    medianMultiplier: z.number().min(1).max(100),
    maxRelativeNorm: z.number().positive().max(1e6),
  }).strict().default(DEFAULT_CLIP_POLICY),
  approvalDeadlineS: z.number().positive().max(7 * 24 * 3600).default(300),
  trainingDeadlineS: z.number().positive().max(7 * 24 * 3600).default(3600),
  /** How long to wait for sites' evaluations of the final global model before declaring the federation done. */
  evaluationDeadlineS: z.number().nonnegative().max(24 * 3600).default(300),
  /** A round that misses its quorum is tried this many times in total (counted across server restarts) before the federation stops. */
  maxAttemptsPerRound: z.int().positive().max(1000).default(5),
  retryDelayS: z.number().nonnegative().max(3600).default(5),
  seed: z.int().default(1),
  /**
   * Cap on one frame from an authenticated site, enforced by the socket before the frame is
   * buffered. Default: the model's float32 size plus 1 MiB (core/federation/protocol.ts frameCapFor).
   */
  maxMessageBytes: z.int().min(64 * 1024).max(MAX_FRAME_BYTES).optional(),
  /**
   * Ping interval; a connection silent for 3 intervals is dropped. Sites train on their main thread
   * and answer between training steps, so keep 3 intervals above the longest step.
   */
  heartbeatS: z.number().positive().max(600).default(20),
  /**
   * Secure aggregation (core/privacy, docs/PRIVACY.md): the server learns only the sum of the
   * updates. `threshold` sites must stay to the end of a round (and is the Shamir threshold);
   * `clipRange` bounds each coordinate of an update before fixed-point encoding.
   */
  secureAggregation: z.object({
    threshold: z.int().min(2).max(1000),
    clipRange: z.number().positive().max(1e3).default(1),
    /** How long sites have to exchange key shares after approving, and to answer the unmasking request. */
    keyExchangeDeadlineS: z.number().positive().max(24 * 3600).default(120),
    unmaskingDeadlineS: z.number().positive().max(24 * 3600).default(120),
  }).strict().optional(),
  /** Client-level DP-FedAvg (core/privacy, docs/PRIVACY.md); absent: no differential privacy. */
  privacy: PrivacyConfigSchema.optional(),
}).strict();

export type FederationConfigInput = z.input<typeof FederationConfigSchema>;
export type FederationConfig = z.infer<typeof FederationConfigSchema> & { modelConfig: ModelConfig; maxMessageBytes: number };

/** Validates a config object; `file` names its source in errors. */
export function parseFederationConfig(value: unknown, file?: string): FederationConfig {
  const parsed = FederationConfigSchema.safeParse(value);
  if (!parsed.success) {
    throw new FedSegError(`invalid federation config: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}`, { file, field: String(parsed.error.issues[0]?.path.join('.') ?? '') });
  }
  // Each model field was checked above; merged with the defaults, they must also fit together.
  const model = ModelConfigSchema.safeParse(withModelDefaults(parsed.data.model));
  if (!model.success) {
    throw new FedSegError(`invalid federation config: model: ${z.prettifyError(model.error).replace(/\n/g, ' ')}`, { file, field: ['model', ...(model.error.issues[0]?.path ?? [])].join('.') });
  }
  checkSecureAggregation(value, parsed.data, file);
  const modelConfig = model.data;
  const privacy = parsed.data.privacy;
  if (privacy && (parsed.data.strategy.name === 'median' || parsed.data.strategy.name === 'trimmed-mean')) {
    throw new FedSegError(`privacy: DP-FedAvg adds its noise to the sum of updates, which strategy ${parsed.data.strategy.name} (coordinate-wise) never forms; use fedavg, fedprox, fedavgm, fedadam or fedyogi`, { file, field: 'strategy.name' });
  }
  if (privacy) checkPrivacyMode(privacy, Boolean(parsed.data.secureAggregation), file);
  const parameters = parameterCount(modelConfig);
  const needed = minimumFrameCapFor(parameters);
  if (needed > MAX_FRAME_BYTES) throw new FedSegError(`the model has ${parameters} parameters; its ${needed}-byte weight frames exceed the ${MAX_FRAME_BYTES}-byte limit`, { file, field: 'model' });
  const given = parsed.data.maxMessageBytes;
  if (given !== undefined && given < needed) {
    throw new FedSegError(`maxMessageBytes ${given} cannot carry this model's updates (${parameters} parameters need at least ${needed} bytes); leave it out to derive the cap from the model`, { file, field: 'maxMessageBytes' });
  }
  return { ...parsed.data, modelConfig, maxMessageBytes: given ?? frameCapFor(parameters) };
}

/**
 * Under secure aggregation the server sees only the sum, so anything that needs each update on its
 * own cannot run: coordinate-wise strategies and server-side norm clipping are refused here, at load.
 */
function checkSecureAggregation(raw: unknown, config: z.infer<typeof FederationConfigSchema>, file?: string): void {
  if (!config.secureAggregation) return;
  const { name } = config.strategy;
  if (name === 'median' || name === 'trimmed-mean') {
    throw new FedSegError(`strategy "${name}" needs every site's update on its own, which secure aggregation hides (the server learns only their sum); use fedavg, fedprox, fedavgm, fedadam or fedyogi, or drop secureAggregation`, { file, field: 'strategy.name' });
  }
  if (typeof raw === 'object' && raw !== null && 'clipping' in raw) {
    throw new FedSegError('server-side clipping needs each update\'s norm, which secure aggregation hides; remove "clipping" (sites clip their own updates) or drop secureAggregation', { file, field: 'clipping' });
  }
}

/**
 * Who adds the noise follows from who sees what: under secure aggregation the server only ever has
 * the masked sum, so the sites add it (distributed); without it, a site's share alone would reach
 * the server nearly bare, so the server adds all of it (central).
 */
function checkPrivacyMode(privacy: PrivacyConfig, secure: boolean, file?: string): void {
  if (secure && privacy.mode !== 'distributed') {
    throw new FedSegError('privacy.mode must be "distributed" with secureAggregation: the server only learns the masked sum, so each site adds its share of the noise before masking (docs/PRIVACY.md)', { file, field: 'privacy.mode' });
  }
  if (!secure && privacy.mode === 'distributed') {
    throw new FedSegError('privacy.mode "distributed" needs secureAggregation: without masking the server would see each site\'s update with only its share of the noise; use "central" or add secureAggregation', { file, field: 'privacy.mode' });
  }
  if (secure && privacy.noiseSeed !== undefined) {
    throw new FedSegError('privacy.noiseSeed seeds the server\'s noise, and in distributed mode the server adds none: each site draws its own secret noise (only the demo and the experiment seed it)', { file, field: 'privacy.noiseSeed' });
  }
}

export function loadFederationConfig(file: string): FederationConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FedSegError(`cannot read federation config (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file }, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new FedSegError(`federation config is not valid JSON: ${(err as Error).message}`, { file }, { cause: err });
  }
  return parseFederationConfig(json, file);
}
