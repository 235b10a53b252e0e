import { SegmentationModel } from '../model/network.js';
import type { PreprocessConfig } from '../preprocess/config.js';
import { loadModelFile, type DecodedModel } from '../weights/index.js';
import { preprocessFromMeta } from './preprocess-meta.js';

export interface LoadedModel {
  model: SegmentationModel;
  file: DecodedModel;
  /** Preprocessing the model was trained with (from the file's meta, else SPEC defaults). */
  preprocess: PreprocessConfig;
}

/** Loads and verifies a model file and builds the network from it (requires an initialised tf backend). */
export async function loadSegmentationModel(path: string): Promise<LoadedModel> {
  const file = await loadModelFile(path);
  const preprocess = preprocessFromMeta(file.meta, path);
  return { model: new SegmentationModel(file.config, file.tensors), file, preprocess };
}
