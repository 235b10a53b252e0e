/**
 * Preprocessing (SPEC section 3) and its inverse.
 *
 * Layout (see layout.ts): a CaseTensor is row-major [i][j][k][c] (NDHWC with D = i, H = j, W = k);
 * a ClassVolume is row-major [i][j][k]; NIfTI files store i fastest, and the converters here are
 * the only place that reorders.
 *
 *   const config = preprocessConfig({ scaling: 'per-slice' })          // zod-validated, SPEC defaults
 *   const item = await preprocessCase(caseVolumesFromFiles(files, config), config)
 *   item.image (128^3 x 3 in [0, 1]), item.classes (0..3), item.tumourFraction, item.affine (crop origin)
 *   for await (const item of await openPreprocessedDataset(dir, config)) { ... }  // one case at a time,
 *                                                                                 // 1 % tumour filter, .stats
 *   openPreprocessedDataset(dir, config, { downsample: 4, cacheInMemory: true })  // 32^3 cases, read once
 *   await writePreprocessedCase(item, outDir)                            // image.nii.gz + mask.nii.gz
 *   uncropPrediction(predictedClasses, item)                             // labels 0/1/2/4 in 240x240x155
 *   downsampleCase(item, 4) / upsampleClasses(pred, 4)                   // reduced-size training (128^3 -> 32^3)
 */
export { caseVolumesFromFiles, type CaseSourceOptions } from './case-source.js';
export { preprocessConfig, PreprocessConfigSchema, type PreprocessConfig } from './config.js';
export { assertCropFits, cropOrigin, cropShape, DEFAULT_CROP, shiftAffineToCrop, type CropWindow } from './crop.js';
export { averagePool, downsampleCase, modePool, upsampleArgmax, upsampleClasses } from './downsample.js';
export { openPreprocessedDataset, PreprocessedDataset, type DatasetOptions, type DatasetPassStats } from './dataset.js';
export { cropMaskToClasses, type CroppedMask, uncropClassesToLabels } from './labels.js';
export {
  type CaseTensor, classesToNiftiOrder, classIndex, type ClassVolume, createCaseTensor, niftiIndex, niftiOrderToClasses,
  niftiOrderToTensor, type NiftiVolume, type NumericArray, tensorIndex, tensorToNiftiOrder,
} from './layout.js';
export { loadVolume } from './load.js';
export { type PreprocessedFiles, type UncroppedPrediction, uncropPrediction, writePreprocessedCase } from './output.js';
export { type CaseVolumes, type LoadedVolume, passesTumourFilter, preprocessCase, type PreprocessedCase } from './pipeline.js';
export { minMaxScaling, type MinMaxScaling, type ScalingMode, writeScaledCrop } from './scaling.js';
