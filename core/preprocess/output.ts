import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as zlibConstants } from 'node:zlib';
import { FedSegError } from '../errors.js';
import { writeNifti } from '../nifti/index.js';
import { uncropClassesToLabels } from './labels.js';
import { classesToNiftiOrder, tensorToNiftiOrder, type ClassVolume } from './layout.js';
import type { PreprocessedCase } from './pipeline.js';

/** Scaled floats barely compress past level 1 (6.0 vs 5.5 MB for 128^3 x 3) but level 6 costs ~5x the time. */
const IMAGE_GZIP = { level: 1 };
/** Masks are long runs of one class: run-length gzip is fast and as small. */
const MASK_GZIP = { level: 6, strategy: zlibConstants.Z_RLE };

export interface PreprocessedFiles {
  image: string;
  mask: string | null;
}

/**
 * Writes `image.nii.gz` (float32, dims ni,nj,nk,channels) and, when the case has a mask,
 * `mask.nii.gz` (uint8 classes 0..3), both with the crop-origin affine. Both are written into a
 * hidden staging folder first and only renamed into `outDir` once both are complete; on failure
 * nothing new is left behind (and an `outDir` this call created is removed again).
 */
export async function writePreprocessedCase(item: PreprocessedCase, outDir: string): Promise<PreprocessedFiles> {
  const created = !(await exists(outDir));
  const staging = join(outDir, `.preprocess.tmp-${process.pid}`);
  try {
    await mkdir(staging, { recursive: true });
    await removeLeftovers(outDir, staging);
  } catch (err) {
    throw new FedSegError(`cannot create output folder (${(err as Error).message})`, { caseId: item.caseId, file: outDir }, { cause: err });
  }
  const files: PreprocessedFiles = { image: join(outDir, 'image.nii.gz'), mask: item.classes ? join(outDir, 'mask.nii.gz') : null };
  try {
    await writeNifti(join(staging, 'image.nii.gz'), {
      dims: item.image.shape, affine: item.affine, datatype: 'float32', data: tensorToNiftiOrder(item.image), gzip: IMAGE_GZIP,
    });
    if (item.classes) {
      await writeNifti(join(staging, 'mask.nii.gz'), {
        dims: item.classes.shape, affine: item.affine, datatype: 'uint8', data: classesToNiftiOrder(item.classes), gzip: MASK_GZIP,
      });
    }
    await rename(join(staging, 'image.nii.gz'), files.image);
    if (files.mask) await rename(join(staging, 'mask.nii.gz'), files.mask);
    // A mask from an earlier run would no longer belong to this image.
    else await rm(join(outDir, 'mask.nii.gz'), { force: true });
    await rmdir(staging);
    return files;
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (created) await rm(outDir, { recursive: true, force: true });
    if (err instanceof FedSegError) throw err;
    throw new FedSegError(`cannot write preprocessed case (${(err as Error).message})`, { caseId: item.caseId, file: outDir }, { cause: err });
  }
}

/** A model's class prediction for a preprocessed case, back in the source grid as BraTS labels. */
export interface UncroppedPrediction {
  dims: [number, number, number];
  /** Labels 0/1/2/4 in NIfTI order, zeros outside the crop. */
  data: Uint8Array;
  /** The source case's own affine. */
  affine: number[][];
}

/** Puts a predicted class volume (classes 0..3, crop shape) back into the case's original grid. */
export function uncropPrediction(classes: ClassVolume, item: Pick<PreprocessedCase, 'crop' | 'sourceDims' | 'sourceAffine'>): UncroppedPrediction {
  return { dims: item.sourceDims, data: uncropClassesToLabels(classes, item.crop, item.sourceDims), affine: item.sourceAffine };
}

/** Staging folders of earlier runs that were killed mid-write. */
async function removeLeftovers(outDir: string, current: string): Promise<void> {
  for (const name of await readdir(outDir)) {
    const path = join(outDir, name);
    if (/^\.preprocess\.tmp-\d+$/.test(name) && path !== current) await rm(path, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
