import { FedSegError, type ErrorLocation } from '../errors.js';

/** Half-open voxel index ranges [start, end) along the file's i, j, k axes. */
export interface CropWindow {
  i: readonly [number, number];
  j: readonly [number, number];
  k: readonly [number, number];
}

/** The original project's crop (SPEC section 3): [56:184, 56:184, 13:141] -> 128 x 128 x 128. */
export const DEFAULT_CROP: CropWindow = { i: [56, 184], j: [56, 184], k: [13, 141] };

export function cropShape(crop: CropWindow): [number, number, number] {
  return [crop.i[1] - crop.i[0], crop.j[1] - crop.j[0], crop.k[1] - crop.k[0]];
}

export function cropOrigin(crop: CropWindow): [number, number, number] {
  return [crop.i[0], crop.j[0], crop.k[0]];
}

/** Throws unless the window lies inside a volume of `dims`. */
export function assertCropFits(crop: CropWindow, dims: readonly number[], where: ErrorLocation): void {
  const axes = ['i', 'j', 'k'] as const;
  axes.forEach((axis, n) => {
    const [start, end] = crop[axis];
    if (start < 0 || end > dims[n] || end <= start) {
      throw new FedSegError(`crop ${axis} range [${start}, ${end}) does not fit the volume's ${dims[n]} voxels along ${axis} (dims ${dims.slice(0, 3).join('x')})`, where);
    }
  });
}

/**
 * The affine of the cropped volume: same rotation/zoom, translation moved to the crop origin,
 * i.e. new translation = affine x [i0, j0, k0, 1]. Affines are 4x4 row-major (rows of numbers).
 */
export function shiftAffineToCrop(affine: readonly (readonly number[])[], crop: CropWindow): number[][] {
  const [i0, j0, k0] = cropOrigin(crop);
  return affine.map((row, r) => {
    const copy = [...row];
    if (r < 3) copy[3] = row[0] * i0 + row[1] * j0 + row[2] * k0 + row[3];
    return copy;
  });
}
