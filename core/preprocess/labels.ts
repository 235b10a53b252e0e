import { LABEL_OF_CLASS, NUM_CLASSES } from '../brats/labels.js';
import { FedSegError, type ErrorLocation } from '../errors.js';
import type { CropWindow } from './crop.js';
import { cropShape } from './crop.js';
import { classIndex, type ClassVolume, type NumericArray } from './layout.js';

/** BraTS label -> model class: 0, 1, 2 stay, 4 (enhancing tumour) becomes 3; -1 marks invalid. */
const CLASS_OF_LABEL = [0, 1, 2, -1, 3] as const;

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
    if (!(v === 0 || v === 1 || v === 2 || v === 4)) {
      const i = n % dims[0];
      const j = Math.floor(n / dims[0]) % dims[1];
      const k = Math.floor(n / (dims[0] * dims[1]));
      throw new FedSegError(`mask value ${v} at voxel (${i}, ${j}, ${k}) is not a BraTS label (0, 1, 2, 4)`, where);
    }
  }
  const shape = cropShape(crop);
  const classes = new Uint8Array(shape[0] * shape[1] * shape[2]);
  const [nx, ny] = dims;
  let tumourVoxels = 0;
  for (let k = crop.k[0]; k < crop.k[1]; k++) {
    for (let j = crop.j[0]; j < crop.j[1]; j++) {
      let s = crop.i[0] + nx * (j + ny * k);
      let d = classIndex(shape, 0, j - crop.j[0], k - crop.k[0]);
      const iStride = shape[1] * shape[2];
      for (let i = crop.i[0]; i < crop.i[1]; i++, s++, d += iStride) {
        const cls = CLASS_OF_LABEL[mask[s]];
        classes[d] = cls;
        if (cls !== 0) tumourVoxels++;
      }
    }
  }
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
  const out = new Uint8Array(nx * ny * nz);
  const iStride = shape[1] * shape[2];
  for (let k = crop.k[0]; k < crop.k[1]; k++) {
    for (let j = crop.j[0]; j < crop.j[1]; j++) {
      let d = crop.i[0] + nx * (j + ny * k);
      let s = classIndex(shape, 0, j - crop.j[0], k - crop.k[0]);
      for (let i = crop.i[0]; i < crop.i[1]; i++, s += iStride, d++) {
        const cls = classes.data[s];
        if (cls >= NUM_CLASSES) throw new FedSegError(`prediction class ${cls} at (${i}, ${j}, ${k}) is outside 0..3`, { field: 'classes' });
        out[d] = LABEL_OF_CLASS[cls];
      }
    }
  }
  return out;
}
