export { preprocessFromMeta, preprocessToMeta } from './preprocess-meta.js';
export { segmentCase, tumourVolumes, voxelVolumeMl, writeSegmentation, type Segmentation, type TumourVolumes } from './segment.js';
export { predictVolume, windowStarts, type SlidingWindowOptions } from './sliding-window.js';
export { loadSegmentationModel, type LoadedModel } from './load-model.js';
export { evaluateHeldOut, type EvaluationCase } from './evaluate.js';
