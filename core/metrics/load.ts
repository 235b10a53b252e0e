/** Reads a BraTS label-map NIfTI file into a LabelVolume for evaluation. */
import { FedSegError } from '../errors.js';
import { readNifti } from '../nifti/read.js';
import type { LabelVolume, Spacing3 } from './types.js';

/** mm per unit of the NIfTI spatial unit code; unknown units are taken as mm, as BraTS files are. */
const MM_PER_UNIT: Record<string, number> = { m: 1000, mm: 1, um: 0.001, unknown: 1 };

/** A 3-D label map (a 4-D file is accepted only when its extra axes have size 1), scl_slope applied. */
export async function readLabelVolume(path: string): Promise<LabelVolume> {
  const image = await readNifti(path);
  const { dims, pixdim, scaling, units } = image.header;
  if (dims.length < 3 || dims.slice(3).some((d) => d !== 1)) {
    throw new FedSegError(`a label map must be 3-D, this file has dims ${dims.join('x')}`, { file: path, field: 'dim' });
  }
  const mm = MM_PER_UNIT[units.spatial] ?? 1;
  const spacing: Spacing3 = [pixdim[0] * mm, pixdim[1] * mm, pixdim[2] * mm];
  const raw = image.data;
  const isBigInt = raw instanceof BigInt64Array || raw instanceof BigUint64Array;
  let data: ArrayLike<number> = isBigInt ? Float64Array.from(raw, Number) : raw;
  if (scaling) data = Float64Array.from(data, (v) => v * scaling.slope + scaling.inter);
  return { data, dims: [dims[0], dims[1], dims[2]], spacing, source: path };
}
