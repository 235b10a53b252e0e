/**
 * BraTS evaluation regions as bit flags, so one pass over a label map classifies every voxel for all
 * three regions: ET = {4}, TC = {1, 4}, WT = {1, 2, 4}.
 */
import { FedSegError } from '../errors.js';

export const REGIONS = ['ET', 'TC', 'WT'] as const;
export type Region = (typeof REGIONS)[number];

export const REGION_BIT: Record<Region, number> = { ET: 1, TC: 2, WT: 4 };

/** Region bits of each BraTS label; -1 marks values that are not a BraTS label. */
const BITS_BY_LABEL = [0, REGION_BIT.TC | REGION_BIT.WT, REGION_BIT.WT, -1, REGION_BIT.ET | REGION_BIT.TC | REGION_BIT.WT];

/**
 * Region bits per voxel. Throws FedSegError naming `source` and the first offending value when a
 * voxel is not one of 0/1/2/4.
 */
export function regionBits(labels: ArrayLike<number>, source = 'mask'): Uint8Array {
  const bits = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    const b = Number.isInteger(label) ? BITS_BY_LABEL[label] : undefined;
    if (b === undefined || b < 0) {
      throw new FedSegError(`label ${label} at voxel ${i} is not a BraTS label (0, 1, 2 or 4)`, { file: source });
    }
    bits[i] = b;
  }
  return bits;
}
