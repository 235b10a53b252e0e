import { FedSegError } from '../errors.js';
import { readNifti, toFloat32 } from '../nifti/index.js';
import type { LoadedVolume } from './pipeline.js';
import type { NumericArray } from './layout.js';

/**
 * Reads one 3D NIfTI (a trailing singleton 4th axis is accepted) as a LoadedVolume. Raw voxels
 * are used as they are unless the header scales them (scl_slope/scl_inter) or they are 64-bit,
 * in which case one float32 copy with the scaling applied is made.
 */
export async function loadVolume(path: string, caseId?: string): Promise<LoadedVolume> {
  const image = await readNifti(path);
  const dims = image.header.dims;
  if (dims.length < 3 || dims.slice(3).some((n) => n !== 1)) {
    throw new FedSegError(`expected a 3D volume, got dims ${dims.join('x')}`, { caseId, file: path, field: 'dim' });
  }
  const raw = image.data;
  const needsCopy = image.header.scaling !== null || raw instanceof BigInt64Array || raw instanceof BigUint64Array;
  const data: NumericArray = needsCopy ? toFloat32(image) : (raw as NumericArray);
  return { dims: [dims[0], dims[1], dims[2]], data, affine: image.header.affine, file: path };
}
