/**
 * BraTS evaluation regions (core/brats: ET = {4}, TC = {1, 4}, WT = {1, 2, 4}) as bit flags, so one
 * pass over a label map classifies every voxel for all three regions.
 */
import { BRATS_LABELS, REGION_NAMES, REGIONS as REGION_LABELS, type RegionName } from '../brats/labels.js';
import { FedSegError } from '../errors.js';

export const REGIONS = REGION_NAMES;
export type Region = RegionName;

/** Metric name of a region's Dice or HD95, as sites report and the server stores them (e.g. dice_WT). */
export function regionMetricKey(metric: 'dice' | 'hd95', region: Region): string {
  return `${metric}_${region}`;
}

export const REGION_BIT: Record<Region, number> = { ET: 1, TC: 2, WT: 4 };

/** Region bits of each label value 0..4; -1 marks values that are not a BraTS label. */
const BITS_BY_LABEL = Array.from({ length: 5 }, (_, label) => (
  (BRATS_LABELS as readonly number[]).includes(label)
    ? REGIONS.reduce((bits, r) => ((REGION_LABELS[r] as readonly number[]).includes(label) ? bits | REGION_BIT[r] : bits), 0)
    : -1));

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
