/** `fedseg demo` settings: parsed once from the command line, validated with zod. */
import { resolve } from 'node:path';
import { z } from 'zod';
import { FedSegError } from '../core/errors.js';

export const DemoOptionsSchema = z.object({
  out: z.string().min(1).default('./demo-output'),
  sites: z.int().min(1).max(16).default(5),
  rounds: z.int().min(1).max(100).default(4),
  model: z.enum(['unet', 'attention-unet']).default('unet'),
  baselines: z.boolean().default(false),
  json: z.boolean().default(false),
  /** Mean synthetic cases per site (each site has its profile's share), of which `heldOut` are kept for evaluation. */
  casesPerSite: z.int().min(2).max(200).default(6),
  heldOut: z.int().min(1).max(100).default(2),
  localEpochs: z.int().min(1).max(100).default(3),
  /** The model sees the 128^3 crop block-averaged by this factor (4: 32^3 voxels of 4 mm); the whole crop is one window. */
  downsample: z.int().min(1).max(16).default(4),
  learningRate: z.number().positive().max(1).default(1e-3),
  batchSize: z.int().min(1).max(16).default(1),
  baseFilters: z.int().min(1).max(64).default(8),
  depth: z.int().min(2).max(5).default(3),
  seed: z.int().min(0).max(0xffffffff).default(2020),
  preset: z.enum(['seed']).optional(),
  /** Aggregate securely (docs/PRIVACY.md), with the round's quorum as the threshold. */
  secureAggregation: z.boolean().default(false),
  /** Client-level DP-FedAvg at this target epsilon (delta 1e-5, over all rounds); absent: no DP. */
  dpEpsilon: z.number().positive().max(1000).optional(),
  /** The DP clip norm C (with dpEpsilon). */
  dpClip: z.number().positive().max(1e6).default(1),
});
/** outDir: where this run's server, logs and reports go; dataDir: the synthetic hospitals (shared by a preset's runs). */
export type DemoOptions = z.infer<typeof DemoOptionsSchema> & { outDir: string; dataDir: string };

/**
 * `--preset seed`: the original project's configuration (SPEC section 4) end to end: the full 128^3
 * crop, U-Net filters 16..256 (depth 5) with its dropout, Dice + focal, Adam 1e-4, batch 2, two
 * rounds of FedAvg with one local epoch. Three cases per site (one held out) keep each model near half
 * an hour on a 2-core CPU. Flags given explicitly still win.
 */
const SEED_PRESET = { downsample: 1, baseFilters: 16, depth: 5, learningRate: 1e-4, batchSize: 2, rounds: 2, localEpochs: 1, casesPerSite: 3, heldOut: 1 };

export function parseDemoOptions(raw: Record<string, unknown>): DemoOptions {
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = DemoOptionsSchema.safeParse(raw.preset === 'seed' ? { ...SEED_PRESET, ...given } : raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = flagName(String(issue.path[0] ?? ''));
    throw new FedSegError(`--${flag}: ${issue.message}`, { field: flag });
  }
  const o = parsed.data;
  if (o.heldOut >= o.casesPerSite) throw new FedSegError(`--held-out must be fewer than --cases (${o.casesPerSite}), got "${o.heldOut}"`, { field: 'held-out' });
  if (o.secureAggregation && o.sites < 3) throw new FedSegError(`--secure-aggregation needs at least 3 sites (a sum of two tells each site the other's update), got ${o.sites}`, { field: 'secure-aggregation' });
  if (128 % o.downsample !== 0) throw new FedSegError(`--downsample must divide the 128^3 crop, got "${o.downsample}"`, { field: 'downsample' });
  if ((128 / o.downsample) % 2 ** (o.depth - 1) !== 0) {
    throw new FedSegError(`--downsample ${o.downsample} leaves a ${128 / o.downsample}^3 window, not divisible by 2^(depth-1) = ${2 ** (o.depth - 1)}`, { field: 'downsample' });
  }
  return { ...o, outDir: resolve(o.out), dataDir: resolve(o.out, 'data') };
}

/** Option key -> its command-line flag, e.g. casesPerSite -> cases, localEpochs -> local-epochs. */
function flagName(key: string): string {
  const renamed: Record<string, string> = { casesPerSite: 'cases', learningRate: 'lr', batchSize: 'batch' };
  return renamed[key] ?? key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
