import { z } from 'zod';
import { FedSegError } from '../errors.js';
import { MODALITIES } from '../brats/labels.js';
import { DEFAULT_CROP } from './crop.js';

const range = z
  .tuple([z.int().min(0), z.int().min(1)])
  .refine(([start, end]) => end > start, { message: 'range end must be greater than its start' });

/** Preprocessing settings (SPEC section 3); every field defaults to the original project's choice. */
export const PreprocessConfigSchema = z.object({
  /** Input channels in order; T1 is left out by default (T1ce carries the same anatomy plus contrast). */
  channels: z
    .array(z.enum(MODALITIES))
    .min(1)
    .refine((list) => new Set(list).size === list.length, { message: 'channels must not repeat' })
    .default(['flair', 't1ce', 't2']),
  scaling: z.enum(['volume', 'per-slice']).default('volume'),
  /** Half-open voxel ranges along the file's i, j, k axes. */
  crop: z
    .object({ i: range, j: range, k: range })
    .default({ i: [...DEFAULT_CROP.i], j: [...DEFAULT_CROP.j], k: [...DEFAULT_CROP.k] }),
  /** Training keeps a case only when its tumour fraction of the crop is above this. */
  minTumourFraction: z.number().min(0).max(1).default(0.01),
});

export type PreprocessConfig = z.infer<typeof PreprocessConfigSchema>;

/** The defaults, optionally overridden; bad settings throw a FedSegError naming the field. */
export function preprocessConfig(overrides: unknown = {}, file?: string): PreprocessConfig {
  const parsed = PreprocessConfigSchema.safeParse(overrides);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new FedSegError(`invalid preprocessing config: ${issue.message}`, { file, field: issue.path.join('.') || undefined });
}
