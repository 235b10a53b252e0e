/**
 * Window/level presets. "Auto" is Niivue's robust range (2nd to 98th percentile); "Wide" runs from 0 to the
 * 99.9th percentile of the brain's voxels, which keeps enhancing rims on T1ce from saturating; "Full" is the
 * whole intensity range. Each modality opens with its own default preset.
 */
import type { NVImage } from '@niivue/niivue';
import type { Modality } from '../../preload/values.js';

export const WINDOW_PRESETS = ['auto', 'wide', 'full'] as const;
export type WindowPreset = (typeof WINDOW_PRESETS)[number];
export const PRESET_TEXT: Record<WindowPreset, string> = { auto: 'Auto', wide: 'Wide', full: 'Full range' };
/** T1ce's enhancing rims are the brightest voxels: Niivue's robust range saturates them. */
export const DEFAULT_PRESET: Record<Modality, WindowPreset> = { flair: 'auto', t1ce: 'wide', t2: 'auto', t1: 'auto' };
/** Voxels sampled for the percentile (every n-th voxel): enough for a stable 99.9th percentile. */
const SAMPLES = 1 << 20;

export function presetWindow(image: NVImage, preset: WindowPreset): { min: number; max: number } {
  if (preset === 'auto') return { min: image.robust_min ?? 0, max: image.robust_max ?? 1 };
  if (preset === 'full') return { min: image.global_min ?? 0, max: image.global_max ?? 1 };
  return { min: 0, max: brainPercentile(image.img as ArrayLike<number> | undefined, 0.999) ?? image.global_max ?? 1 };
}

/** Percentile of the non-zero (brain) voxels, from a regular sample. */
function brainPercentile(voxels: ArrayLike<number> | undefined, p: number): number | null {
  if (!voxels || voxels.length === 0) return null;
  const stride = Math.max(1, Math.floor(voxels.length / SAMPLES));
  const values: number[] = [];
  for (let i = 0; i < voxels.length; i += stride) if (voxels[i] !== 0) values.push(voxels[i]);
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}
