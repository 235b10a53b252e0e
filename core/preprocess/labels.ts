import { BRATS_LABELS, isBratsLabel, LABEL_OF_CLASS, labelToClass, NUM_CLASSES } from '../brats/labels.js';
import { FedSegError, type ErrorLocation } from '../errors.js';
import type { CropWindow } from './crop.js';
import { cropShape } from './crop.js';
import type { ClassVolume, NumericArray } from './layout.js';
import { forEachTile } from './tiles.js';

export interface CroppedMask {
  classes: ClassVolume;
  /** Voxels of the crop with any tumour label (1, 2 or 4). */
  tumourVoxels: number;
  /** tumourVoxels / crop voxels: what the training filter compares against its threshold. */
  tumourFraction: number;
}

/**
 * Checks every voxel of a BraTS mask (NIfTI order) holds 0, 1, 2 or 4, then crops it into
 * classes 0..3 (row-major [i][j][k]). Throws naming the first bad value and where it is.
 */
export function cropMaskToClasses(mask: NumericArray, dims: readonly number[], crop: CropWindow, where: ErrorLocation): CroppedMask {
  for (let n = 0; n < mask.length; n++) {
    const v = mask[n];
    if (!isBratsLabel(v)) {
      const i = n % dims[0];
      const j = Math.floor(n / dims[0]) % dims[1];
      const k = Math.floor(n / (dims[0] * dims[1]));
      throw new FedSegError(`mask value ${v} at voxel (${i}, ${j}, ${k}) is not a BraTS label (${BRATS_LABELS.join(', ')})`, where);
    }
  }
  const shape = cropShape(crop);
  const [ni, nj, nk] = shape;
  const classes = new Uint8Array(ni * nj * nk);
  const [nx, ny] = dims;
  let tumourVoxels = 0;
  forEachTile(shape, (j, i0, i1, k0, k1) => {
    const sourceRow = crop.i[0] + nx * (j + crop.j[0]);
    for (let k = k0; k < k1; k++) {
      const s = sourceRow + nx * ny * (k + crop.k[0]);
      for (let i = i0; i < i1; i++) {
        const label = mask[s + i];
        if (label !== 0) {
          classes[(i * nj + j) * nk + k] = labelToClass(label);
          tumourVoxels++;
        }
      }
    }
  });
  return { classes: { shape, data: classes }, tumourVoxels, tumourFraction: tumourVoxels / classes.length };
}

/**
 * Puts a predicted class volume (row-major [i][j][k], classes 0..3, shape = crop shape) back
 * into the original grid in NIfTI order with BraTS labels (class 3 -> 4), zeros outside the crop.
 */
export function uncropClassesToLabels(classes: ClassVolume, crop: CropWindow, fullDims: readonly number[]): Uint8Array {
  const shape = cropShape(crop);
  if (classes.shape.some((n, axis) => n !== shape[axis])) {
    throw new FedSegError(`prediction shape ${classes.shape.join('x')} does not match the crop ${shape.join('x')}`, { field: 'shape' });
  }
  const [nx, ny, nz] = fullDims;
  const [, nj, nk] = shape;
  const out = new Uint8Array(nx * ny * nz);
  forEachTile(shape, (j, i0, i1, k0, k1) => {
    const targetRow = crop.i[0] + nx * (j + crop.j[0]);
    for (let k = k0; k < k1; k++) {
      const d = targetRow + nx * ny * (k + crop.k[0]);
      for (let i = i0; i < i1; i++) {
        const cls = classes.data[(i * nj + j) * nk + k];
        if (cls >= NUM_CLASSES) {
          throw new FedSegError(`prediction class ${cls} at (${i + crop.i[0]}, ${j + crop.j[0]}, ${k + crop.k[0]}) is outside 0..${NUM_CLASSES - 1}`, { field: 'classes' });
        }
        out[d + i] = LABEL_OF_CLASS[cls];
      }
    }
  });
  return out;
}
