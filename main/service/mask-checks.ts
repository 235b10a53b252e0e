/**
 * What a reviewer is told before a mask becomes final: its Dice and volumes against the mask it was edited
 * from, and plausibility warnings (an empty mask from a non-empty source, tumour outside the brain, a tumour
 * implausibly large for the brain). Warnings do not block saving; the save must name each one it accepts.
 */
import type { MaskComparison, MaskWarning, RegionScores } from '../../preload/api.js';

const REGION_LABELS = { et: [4], tc: [1, 4], wt: [1, 2, 4] } as const;
type RegionKey = keyof typeof REGION_LABELS;
const KEYS = Object.keys(REGION_LABELS) as RegionKey[];
/** Share of the whole tumour that may lie outside the brain (FLAIR = 0) before it is flagged. */
const OUTSIDE_BRAIN_SHARE = 0.05;
/** Whole tumour larger than this share of the brain is flagged (BraTS tumours stay well below it). */
const BRAIN_SHARE = 0.5;

function inRegion(region: RegionKey, label: number): boolean {
  return (REGION_LABELS[region] as readonly number[]).includes(label);
}

function volumesMl(labels: ArrayLike<number>, voxelMl: number): RegionScores {
  const out: RegionScores = { et: 0, tc: 0, wt: 0 };
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 0) continue;
    for (const k of KEYS) if (inRegion(k, v)) out[k] += voxelMl;
  }
  return out;
}

/** Dice per region of `edited` against `source` (null when the source is blank: nothing to compare with). */
function diceAgainst(edited: ArrayLike<number>, source: ArrayLike<number>): RegionScores {
  const both: RegionScores = { et: 0, tc: 0, wt: 0 };
  const a: RegionScores = { et: 0, tc: 0, wt: 0 };
  const b: RegionScores = { et: 0, tc: 0, wt: 0 };
  for (let i = 0; i < edited.length; i++) {
    const e = edited[i];
    const s = source[i];
    if (e === 0 && s === 0) continue;
    for (const k of KEYS) {
      const inE = inRegion(k, e);
      const inS = inRegion(k, s);
      if (inE) a[k]++;
      if (inS) b[k]++;
      if (inE && inS) both[k]++;
    }
  }
  const dice = (k: RegionKey) => (a[k] + b[k] === 0 ? 1 : (2 * both[k]) / (a[k] + b[k]));
  return { et: dice('et'), tc: dice('tc'), wt: dice('wt') };
}

export function compareMasks(edited: ArrayLike<number>, source: ArrayLike<number> | null, voxelMl: number): MaskComparison {
  return {
    volumesMl: volumesMl(edited, voxelMl),
    sourceVolumesMl: source ? volumesMl(source, voxelMl) : { et: 0, tc: 0, wt: 0 },
    diceVsSource: source ? diceAgainst(edited, source) : null,
  };
}

/** `brain`: the case's FLAIR (non-zero = brain), on the same grid as the mask. */
export function plausibilityWarnings(edited: ArrayLike<number>, comparison: MaskComparison, brain: ArrayLike<number>, voxelMl: number): MaskWarning[] {
  const warnings: MaskWarning[] = [];
  const { wt } = comparison.volumesMl;
  if (wt === 0 && comparison.sourceVolumesMl.wt > 0) {
    warnings.push({ code: 'empty', message: `the mask is empty although its source has ${comparison.sourceVolumesMl.wt.toFixed(1)} mL of tumour` });
  }
  let brainVoxels = 0;
  let outside = 0;
  for (let i = 0; i < brain.length; i++) {
    if (brain[i] !== 0) brainVoxels++;
    else if (edited[i] !== 0) outside++;
  }
  const outsideMl = outside * voxelMl;
  if (wt > 0 && outsideMl > OUTSIDE_BRAIN_SHARE * wt) {
    warnings.push({ code: 'outside-brain', message: `${outsideMl.toFixed(1)} mL of the mask (${Math.round((100 * outsideMl) / wt)} %) lies outside the brain` });
  }
  const brainMl = brainVoxels * voxelMl;
  if (wt > BRAIN_SHARE * brainMl) {
    warnings.push({ code: 'too-large', message: `the whole tumour is ${wt.toFixed(0)} mL, ${Math.round((100 * wt) / Math.max(brainMl, voxelMl))} % of the ${brainMl.toFixed(0)} mL brain` });
  }
  return warnings;
}
