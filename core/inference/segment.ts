import { discoverCase } from '../brats/index.js';
import { FedSegError } from '../errors.js';
import type { SegmentationModel } from '../model/network.js';
import { writeNifti } from '../nifti/index.js';
import { caseVolumesFromFiles, preprocessCase, uncropPrediction, type PreprocessConfig } from '../preprocess/index.js';
import { predictVolume, type SlidingWindowOptions } from './sliding-window.js';

export interface TumourVolumes {
  /** Enhancing tumour (label 4), mL. */
  ET: number;
  /** Tumour core (labels 1, 4), mL. */
  TC: number;
  /** Whole tumour (labels 1, 2, 4), mL. */
  WT: number;
}

export interface Segmentation {
  caseId: string;
  /** Source grid (e.g. 240 x 240 x 155). */
  dims: [number, number, number];
  /** The case's own affine. */
  affine: number[][];
  /** BraTS labels 0/1/2/4 in NIfTI order, zeros outside the crop. */
  labels: Uint8Array;
  volumesMl: TumourVolumes;
  voxelVolumeMl: number;
  seconds: number;
}

/** Voxel volume in mL from the affine's column norms (mm). */
export function voxelVolumeMl(affine: number[][]): number {
  const spacing = [0, 1, 2].map((col) => Math.hypot(affine[0][col], affine[1][col], affine[2][col]));
  return (spacing[0] * spacing[1] * spacing[2]) / 1000;
}

/** Tumour volume per BraTS region: voxel count x voxel volume / 1000 (SPEC section 4). */
export function tumourVolumes(labels: ArrayLike<number>, voxelMl: number): TumourVolumes {
  const counts = [0, 0, 0, 0, 0];
  for (let v = 0; v < labels.length; v++) counts[labels[v]]++;
  return { ET: counts[4] * voxelMl, TC: (counts[1] + counts[4]) * voxelMl, WT: (counts[1] + counts[2] + counts[4]) * voxelMl };
}

/**
 * Predicts a BraTS case folder: preprocesses it as the model was trained, runs sliding-window
 * inference over the crop, and maps the classes back to labels 0/1/2/4 in the original grid.
 * A missing modality fails before anything is computed.
 */
export async function segmentCase(model: SegmentationModel, caseDir: string, preprocess: PreprocessConfig, options: SlidingWindowOptions = {}): Promise<Segmentation> {
  const started = performance.now();
  const files = await discoverCase(caseDir);
  if (Object.keys(files.modalities).length === 0) {
    throw new FedSegError('no BraTS modality files in this folder (expected <case>_flair.nii.gz, _t1ce, _t2, ...)', { file: caseDir });
  }
  const item = await preprocessCase(caseVolumesFromFiles(files, preprocess, { ignoreMask: true }), preprocess);
  const classes = await predictVolume(model, item.image, options);
  const restored = uncropPrediction(classes, item);
  const voxelMl = voxelVolumeMl(restored.affine);
  return {
    caseId: item.caseId,
    dims: restored.dims,
    affine: restored.affine,
    labels: restored.data,
    volumesMl: tumourVolumes(restored.data, voxelMl),
    voxelVolumeMl: voxelMl,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Writes the mask as uint8 NIfTI with the case's affine and no header text (atomic). */
export async function writeSegmentation(path: string, segmentation: Segmentation): Promise<void> {
  await writeNifti(path, { dims: segmentation.dims, affine: segmentation.affine, datatype: 'uint8', data: segmentation.labels });
}
