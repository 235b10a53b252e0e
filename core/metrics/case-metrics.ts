/** Per-case BraTS evaluation (SPEC section 4): Dice, HD95, sensitivity, specificity and volumes per region. */
import { FedSegError } from '../errors.js';
import { hausdorff95, type VoxelBox } from './hausdorff.js';
import { REGION_BIT, REGIONS, regionBits, type Region } from './regions.js';
import type { LabelVolume } from './types.js';

export interface RegionMetrics {
  dice: number;
  /** mm; 0 when both masks are empty, 373.13 when exactly one is. */
  hd95: number;
  /** TP / (TP + FN); with no true voxels: 1 if the prediction is empty too, else 0 (as Dice). */
  sensitivity: number;
  /** TN / (TN + FP); 1 when the region covers the whole grid in the truth. */
  specificity: number;
  predVolumeMl: number;
  truthVolumeMl: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}

export type CaseMetrics = Record<Region, RegionMetrics>;

/** Relative tolerance for pixdim differences between prediction and truth (float32 header round-off). */
const SPACING_TOLERANCE = 1e-4;

/**
 * Evaluates a predicted label map against the truth on their shared grid, using the truth's voxel
 * spacing. Throws FedSegError naming the file when dims or spacing differ or a label is not 0/1/2/4.
 */
export function computeCaseMetrics(pred: LabelVolume, truth: LabelVolume): CaseMetrics {
  const predName = pred.source ?? 'prediction';
  const truthName = truth.source ?? 'truth';
  if (pred.dims.some((d, axis) => d !== truth.dims[axis])) {
    throw new FedSegError(`dims ${pred.dims.join('x')} differ from the truth's ${truth.dims.join('x')} (${truthName})`, { file: predName, field: 'dim' });
  }
  const differentSpacing = pred.spacing.some((s, axis) => Math.abs(s - truth.spacing[axis]) > SPACING_TOLERANCE * Math.abs(truth.spacing[axis]));
  if (differentSpacing) {
    throw new FedSegError(`voxel spacing ${pred.spacing.join('x')} mm differs from the truth's ${truth.spacing.join('x')} mm (${truthName})`, { file: predName, field: 'pixdim' });
  }
  for (const [volume, name] of [[pred, predName], [truth, truthName]] as const) {
    if (volume.spacing.some((s) => !(s > 0) || !Number.isFinite(s))) {
      throw new FedSegError(`voxel spacing ${volume.spacing.join('x')} is not positive`, { file: name, field: 'pixdim' });
    }
    const expected = volume.dims[0] * volume.dims[1] * volume.dims[2];
    if (volume.data.length !== expected) {
      throw new FedSegError(`has ${volume.data.length} voxels but dims ${volume.dims.join('x')} need ${expected}`, { file: name });
    }
  }
  const predBits = regionBits(pred.data, predName);
  const truthBits = regionBits(truth.data, truthName);
  const tally = tallyRegions(predBits, truthBits, truth.dims);
  const voxelMl = (truth.spacing[0] * truth.spacing[1] * truth.spacing[2]) / 1000;
  const total = predBits.length;
  const result = {} as CaseMetrics;
  for (const region of REGIONS) {
    const t = tally[region];
    const predCount = t.tp + t.fp;
    const truthCount = t.tp + t.fn;
    const tn = total - t.tp - t.fp - t.fn;
    result[region] = {
      dice: predCount + truthCount === 0 ? 1 : (2 * t.tp) / (predCount + truthCount),
      hd95: hausdorff95(predBits, truthBits, REGION_BIT[region], truth.dims, truth.spacing, t.box, predCount, truthCount),
      sensitivity: truthCount === 0 ? (predCount === 0 ? 1 : 0) : t.tp / truthCount,
      specificity: tn + t.fp === 0 ? 1 : tn / (tn + t.fp),
      predVolumeMl: predCount * voxelMl,
      truthVolumeMl: truthCount * voxelMl,
      truePositives: t.tp,
      falsePositives: t.fp,
      falseNegatives: t.fn,
    };
  }
  return result;
}

interface RegionTally { tp: number; fp: number; fn: number; box: VoxelBox | null }

/** Confusion counts and the bounding box of prediction-or-truth, per region, in one pass. */
function tallyRegions(predBits: Uint8Array, truthBits: Uint8Array, dims: LabelVolume['dims']): Record<Region, RegionTally> {
  const [nx, ny, nz] = dims;
  const tally = Object.fromEntries(REGIONS.map((r) => [r, { tp: 0, fp: 0, fn: 0, box: null }])) as Record<Region, RegionTally>;
  const entries = REGIONS.map((r) => [REGION_BIT[r], tally[r]] as const);
  let at = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, at++) {
        const p = predBits[at];
        const t = truthBits[at];
        if ((p | t) === 0) continue;
        for (const [bit, r] of entries) {
          const inPred = (p & bit) !== 0;
          const inTruth = (t & bit) !== 0;
          if (!inPred && !inTruth) continue;
          if (inPred && inTruth) r.tp++;
          else if (inPred) r.fp++;
          else r.fn++;
          if (r.box === null) r.box = { lo: [i, j, k], hi: [i, j, k] };
          else grow(r.box, i, j, k);
        }
      }
    }
  }
  return tally;
}

function grow(box: VoxelBox, i: number, j: number, k: number): void {
  if (i < box.lo[0]) box.lo[0] = i;
  if (i > box.hi[0]) box.hi[0] = i;
  if (j < box.lo[1]) box.lo[1] = j;
  if (j > box.hi[1]) box.hi[1] = j;
  if (k < box.lo[2]) box.lo[2] = k;
  if (k > box.hi[2]) box.hi[2] = k;
}
