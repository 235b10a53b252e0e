/**
 * Synthetic BraTS-like hospitals (deterministic for a seed):
 *   await writeSyntheticDataset({ out, sites: 5, casesPerSite: 4, seed: 1 })  // DIR/site-N/BraTS20_Training_NNN/...
 *     (grid: { dims: [60, 60, 40] } writes small cases of the same anatomy, for fast tests)
 *   generateCase(seed, siteProfile(seed, site), caseIndex)   // one 240x240x155 case in memory, NIfTI order
 *   await generateMiniCase({ size: 32 })                     // tiny preprocessed case: image [32,32,32,3] + classes
 */
export { generateMiniCase, type MiniCase, type MiniCaseOptions } from './mini-case.js';
export { BRATS_AFFINE, BRATS_DIMS, generateCase, type FieldOfView, type GenerateCaseOptions, type SyntheticCase, type TumourGeometry } from './phantom.js';
export { deriveSeed, Prng } from './prng.js';
export { MODALITIES, type Modality, siteProfile, type SiteProfile } from './site-profiles.js';
export { nameMappingCsv, survivalInfoCsv, type SynthOptions, type SynthReport, type SynthSiteReport, trainingCaseId, writeCaseFolder, writeSyntheticDataset, type WrittenCase } from './write-dataset.js';
export { siteMontage } from './montage.js';
