import { preprocessConfig, type PreprocessConfig } from '../preprocess/config.js';
import type { ModelMeta } from '../weights/codec.js';

/**
 * The preprocessing a model was trained with travels in its model file's meta, so inference
 * feeds it the same channels, scaling and crop. Files without it get SPEC section 3's defaults.
 */
export function preprocessToMeta(config: PreprocessConfig): ModelMeta {
  return {
    'preprocess.channels': config.channels.join(','),
    'preprocess.scaling': config.scaling,
    'preprocess.crop': (['i', 'j', 'k'] as const).map((axis) => config.crop[axis].join(':')).join(','),
  };
}

export function preprocessFromMeta(meta: ModelMeta, file?: string): PreprocessConfig {
  const overrides: Record<string, unknown> = {};
  const channels = meta['preprocess.channels'];
  if (typeof channels === 'string') overrides.channels = channels.split(',');
  if (typeof meta['preprocess.scaling'] === 'string') overrides.scaling = meta['preprocess.scaling'];
  const crop = meta['preprocess.crop'];
  if (typeof crop === 'string') {
    const [i, j, k] = crop.split(',').map((range) => range.split(':').map(Number));
    overrides.crop = { i, j, k };
  }
  return preprocessConfig(overrides, file);
}
