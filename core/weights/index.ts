export { architectureDifferences, architectureHash, checkTensorsMatch, decodeModel, encodeModel, MODEL_MAGIC } from './codec.js';
export type { DecodedModel, DecodeOptions, ModelMeta } from './codec.js';
export { loadModelFile, saveModelFile } from './file.js';
export { elementCount, type NamedTensor } from './types.js';
