import { preprocessConfig, type PreprocessConfig } from '../preprocess/config.js';
import { cropOrigin, cropShape, DEFAULT_CROP, type CropWindow } from '../preprocess/crop.js';
import { preprocessCase, type PreprocessedCase } from '../preprocess/pipeline.js';
import { generateCase, type SyntheticCase } from './phantom.js';
import { siteProfile } from './site-profiles.js';

export interface MiniCaseOptions {
  /** Edge length of the cube, in voxels (e.g. 32, 48, 64). Default 32. */
  size?: number;
  /** Dataset seed; default 1. */
  seed?: number;
  /** 1-based site whose scanner/tumour profile to use; default 1. */
  site?: number;
  /** Case index within the site; default 0. */
  caseIndex?: number;
  /** Glioma grade; default 'high', so all four classes are present. */
  grade?: 'high' | 'low';
  /** Preprocessing settings (channels, scaling); the crop is always the whole mini volume. */
  config?: Partial<Pick<PreprocessConfig, 'channels' | 'scaling'>>;
}

export interface MiniCase extends PreprocessedCase {
  /** The raw synthetic volumes (int16 modalities + BraTS mask) it was made from. */
  raw: SyntheticCase;
}

/**
 * A tiny preprocessed training case for fast tests of models and training: the 128^3 crop
 * window of a synthetic case sampled on a `size`^3 grid, min-max scaled, channel-last
 * (`image.shape` = [size, size, size, channels]) with classes 0..3. Deterministic.
 */
export async function generateMiniCase(options: MiniCaseOptions = {}): Promise<MiniCase> {
  const size = options.size ?? 32;
  const seed = options.seed ?? 1;
  const raw = generateCase(seed, siteProfile(seed, options.site ?? 1), options.caseIndex ?? 0, {
    dims: [size, size, size],
    fov: { start: cropOrigin(DEFAULT_CROP), size: cropShape(DEFAULT_CROP) },
    grade: options.grade ?? 'high',
  });
  const whole: CropWindow = { i: [0, size], j: [0, size], k: [0, size] };
  const config = preprocessConfig({ ...options.config, crop: whole });
  const processed = await preprocessCase(
    {
      caseId: `mini-${seed}-${options.site ?? 1}-${options.caseIndex ?? 0}`,
      loadModality: (modality) => ({ dims: raw.dims, data: raw.modalities[modality], affine: raw.affine }),
      loadMask: () => ({ dims: raw.dims, data: raw.seg, affine: raw.affine }),
    },
    config,
  );
  return { ...processed, raw };
}
