import { z } from 'zod';
import { FedSegError } from '../errors.js';

/**
 * Architecture of a FedSeg segmentation network. This is what a model file and the federation
 * carry, so every field that changes the weights or the forward pass lives here.
 */
export const ARCHITECTURES = ['unet', 'attention-unet'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/**
 * Decoder upsampling. `transpose`: the original project's Conv3DTranspose(kernel 2, stride 2),
 * computed as one matMul plus a depth-to-space shuffle (trainable on every backend).
 * `nearest`: nearest-neighbour x2 then a 3x3x3 convolution.
 */
export const UPSAMPLING_MODES = ['transpose', 'nearest'] as const;
export type UpsamplingMode = (typeof UPSAMPLING_MODES)[number];

/** The original project's per-level dropout (encoder levels 16..256 filters); decoder mirrors it. */
export const ORIGINAL_DROPOUT = [0.1, 0.1, 0.2, 0.2, 0.3] as const;

const positiveInt = z.int().positive();

const ModelConfigFields = z
  .object({
    arch: z.enum(ARCHITECTURES),
    /** Training/inference window [D, H, W]; weights do not depend on it. */
    inputShape: z.tuple([positiveInt, positiveInt, positiveInt]),
    inChannels: positiveInt.max(64),
    numClasses: z.int().min(2).max(64),
    baseFilters: positiveInt.max(512),
    /** Number of resolution levels including the bottleneck (original: 5 -> 16..256 filters). */
    depth: z.int().min(2).max(7),
    /** Dropout rate per level, applied between the two convolutions while training. */
    dropout: z.array(z.number().min(0).lt(1)),
    upsampling: z.enum(UPSAMPLING_MODES),
    /**
     * Integer factor by which the preprocessed crop is block-averaged before it reaches the network
     * (1: native 1 mm voxels; 4: the 128^3 crop seen as 32^3 voxels of 4 mm). Part of the model, not a
     * site setting, because weights learned at one voxel size are wrong at another: training,
     * `fedseg segment` and the viewer's Predict all read it from here. inputShape counts reduced voxels.
     */
    downsample: z.int().min(1).max(16).default(1),
  })
  .strict();

/**
 * Overrides on the default config (the `model` of federation.json): any subset of the fields, each
 * checked as in ModelConfigSchema; the whole config is checked once they are merged (makeModelConfig).
 */
export const ModelConfigOverridesSchema = ModelConfigFields.partial();
export type ModelConfigOverrides = z.infer<typeof ModelConfigOverridesSchema>;

export const ModelConfigSchema = ModelConfigFields
  .superRefine((c, ctx) => {
    if (c.dropout.length !== c.depth) {
      ctx.addIssue({ code: 'custom', path: ['dropout'], message: `needs one rate per level (${c.depth}), got ${c.dropout.length}` });
    }
    const factor = 2 ** (c.depth - 1);
    c.inputShape.forEach((size, axis) => {
      if (size % factor !== 0) {
        ctx.addIssue({ code: 'custom', path: ['inputShape', axis], message: `${size} is not divisible by 2^(depth-1) = ${factor}` });
      }
    });
  });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;
/** A config as written by hand or read from an older file: fields with defaults may be absent. */
export type ModelConfigInput = z.input<typeof ModelConfigSchema>;

/** Dropout per level for a given depth: the original rates, bottleneck always 0.3. */
export function defaultDropout(depth: number): number[] {
  return Array.from({ length: depth }, (_, level) =>
    level === depth - 1 ? ORIGINAL_DROPOUT[4] : ORIGINAL_DROPOUT[Math.min(level, 3)],
  );
}

/** Overrides on the original project's defaults (U-Net, 128^3, 16 filters, depth 5), not yet validated. */
export function withModelDefaults(overrides: Partial<ModelConfigInput> = {}): ModelConfigInput {
  const depth = overrides.depth ?? 5;
  return {
    arch: 'unet',
    inputShape: [128, 128, 128],
    inChannels: 3,
    numClasses: 4,
    baseFilters: 16,
    depth,
    dropout: defaultDropout(depth),
    upsampling: 'transpose',
    downsample: 1,
    ...overrides,
  };
}

/** Builds a validated config from overrides on the original project's defaults. */
export function makeModelConfig(overrides: Partial<ModelConfigInput> = {}): ModelConfig {
  return parseModelConfig(withModelDefaults(overrides));
}

/** Parses untrusted config JSON; `file` names where it came from in the error. */
export function parseModelConfig(value: unknown, file?: string): ModelConfig {
  const parsed = ModelConfigSchema.safeParse(value);
  if (!parsed.success) {
    throw new FedSegError(`invalid model config: ${z.prettifyError(parsed.error).replace(/\n/g, ' ')}`, { file, field: 'config' });
  }
  return parsed.data;
}

/** Filters at each level: baseFilters * 2^level. */
export function levelFilters(config: ModelConfig): number[] {
  return Array.from({ length: config.depth }, (_, level) => config.baseFilters * 2 ** level);
}

/** Channels inside an attention gate on a skip with `skipFilters` channels (Oktay et al.: half). */
export function attentionInterChannels(skipFilters: number): number {
  return Math.max(1, Math.floor(skipFilters / 2));
}
