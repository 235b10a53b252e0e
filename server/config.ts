import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FedSegError } from '../core/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../core/federation/protocol.js';
import { DEFAULT_CLIP_POLICY } from '../core/federation/bound-updates.js';
import { StrategyConfigSchema } from '../core/federation/strategies/index.js';
import { ModelConfigOverridesSchema, ModelConfigSchema, withModelDefaults, type ModelConfig } from '../core/model/config.js';

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
  maxMessageBytes: z.int().min(64 * 1024).max(1024 * 1024 * 1024).default(DEFAULT_MAX_MESSAGE_BYTES),
  /**
   * Ping interval; a connection silent for 3 intervals is dropped. Sites train on their main thread
   * and answer between training steps, so keep 3 intervals above the longest step.
   */
  heartbeatS: z.number().positive().max(600).default(20),
}).strict();

export type FederationConfigInput = z.input<typeof FederationConfigSchema>;
export type FederationConfig = z.infer<typeof FederationConfigSchema> & { modelConfig: ModelConfig };

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
  return { ...parsed.data, modelConfig: model.data };
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
