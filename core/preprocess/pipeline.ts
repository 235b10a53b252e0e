import { FedSegError } from '../errors.js';
import type { Modality } from '../brats/labels.js';
import type { PreprocessConfig } from './config.js';
import { assertCropFits, cropShape, shiftAffineToCrop, type CropWindow } from './crop.js';
import { cropMaskToClasses } from './labels.js';
import { createCaseTensor, type CaseTensor, type ClassVolume, type NiftiVolume } from './layout.js';
import { minMaxScaling, writeScaledCrop } from './scaling.js';

/** One case after preprocessing: what training, inference and `fedseg preprocess` consume. */
export interface PreprocessedCase {
  caseId: string;
  /** Row-major [i][j][k][c] crop, channels in `config.channels` order, values in [0, 1]. */
  image: CaseTensor;
  /** Classes 0..3 of the crop (label 4 -> 3); absent for cases without a mask. */
  classes?: ClassVolume;
  /** Tumour voxels / crop voxels; absent without a mask. */
  tumourFraction?: number;
  /** Source affine shifted to the crop origin (4x4 rows). */
  affine: number[][];
  /** Source grid, for putting predictions back. */
  sourceDims: [number, number, number];
  sourceAffine: number[][];
  crop: CropWindow;
}

/**
 * Supplies one modality volume at a time, so a case never holds more than one full-size
 * modality in memory (the reader can free it as soon as its crop is written).
 */
export interface CaseVolumes {
  caseId: string;
  loadModality(modality: Modality): Promise<LoadedVolume> | LoadedVolume;
  /** Undefined when the case has no mask (validation/inference cases). */
  loadMask?: () => Promise<LoadedVolume> | LoadedVolume;
}

export interface LoadedVolume extends NiftiVolume {
  /** Voxel -> RAS+ mm, 4x4 rows. */
  affine: number[][];
  /** File it came from, for error messages. */
  file?: string;
}

/** Scales, crops and stacks the configured channels, and crops + maps the mask (SPEC section 3). */
export async function preprocessCase(source: CaseVolumes, config: PreprocessConfig): Promise<PreprocessedCase> {
  const { caseId } = source;
  const crop = config.crop;
  const shape = cropShape(crop);
  const image = createCaseTensor([shape[0], shape[1], shape[2], config.channels.length]);
  let reference: LoadedVolume | undefined;
  for (const [channel, modality] of config.channels.entries()) {
    const volume = await source.loadModality(modality);
    reference = checkSameGrid(volume, reference, caseId);
    assertCropFits(crop, volume.dims, { caseId, file: volume.file, field: 'crop' });
    writeScaledCrop(image, channel, volume.data, volume.dims, minMaxScaling(volume.data, volume.dims, config.scaling), crop);
  }
  if (!reference) throw new FedSegError('no channels configured', { caseId, field: 'channels' });

  const result: PreprocessedCase = {
    caseId,
    image,
    affine: shiftAffineToCrop(reference.affine, crop),
    sourceDims: [...reference.dims],
    sourceAffine: reference.affine.map((row) => [...row]),
    crop,
  };
  if (source.loadMask) {
    const mask = await source.loadMask();
    checkSameGrid(mask, reference, caseId);
    const cropped = cropMaskToClasses(mask.data, mask.dims, crop, { caseId, file: mask.file });
    result.classes = cropped.classes;
    result.tumourFraction = cropped.tumourFraction;
  }
  return result;
}

/** Whether a preprocessed case passes the training filter (tumour fraction above the threshold). */
export function passesTumourFilter(item: PreprocessedCase, config: PreprocessConfig): boolean {
  return item.tumourFraction !== undefined && item.tumourFraction > config.minTumourFraction;
}

function checkSameGrid(volume: LoadedVolume, reference: LoadedVolume | undefined, caseId: string): LoadedVolume {
  if (volume.data.length !== volume.dims[0] * volume.dims[1] * volume.dims[2]) {
    throw new FedSegError(`expected a 3D volume, got ${volume.data.length} voxels for dims ${volume.dims.join('x')}`, { caseId, file: volume.file });
  }
  if (reference && volume.dims.some((n, axis) => n !== reference.dims[axis])) {
    throw new FedSegError(
      `dims ${volume.dims.join('x')} differ from ${reference.dims.join('x')} of ${reference.file ?? 'the first channel'}`,
      { caseId, file: volume.file, field: 'dim' },
    );
  }
  return reference ?? volume;
}
