/**
 * BraTS 2020 conventions shared by every FedSeg module: modality names, mask labels, the label 4 <->
 * class 3 mapping used inside models, and the evaluation regions.
 */

/** MRI sequences of a BraTS case, in file-name spelling. */
export const MODALITIES = ['flair', 't1', 't1ce', 't2'] as const;
export type Modality = (typeof MODALITIES)[number];

/** Mask labels: 0 background, 1 necrotic / non-enhancing core, 2 peritumoral edema, 4 enhancing tumour. */
export const BRATS_LABELS = [0, 1, 2, 4] as const;
export type BratsLabel = (typeof BRATS_LABELS)[number];

export const LABEL_NAMES: Record<BratsLabel, string> = {
  0: 'background', 1: 'necrotic / non-enhancing tumour core (NCR/NET)', 2: 'peritumoral edema (ED)', 4: 'GD-enhancing tumour (ET)',
};

/** Evaluation regions as label sets: enhancing tumour, tumour core, whole tumour. */
export const REGIONS = { ET: [4], TC: [1, 4], WT: [1, 2, 4] } as const satisfies Record<string, readonly BratsLabel[]>;
export type RegionName = keyof typeof REGIONS;
export const REGION_NAMES = ['ET', 'TC', 'WT'] as const satisfies readonly RegionName[];

/** Model classes are 0..3: label 4 becomes class 3. */
export const NUM_CLASSES = 4;
export const LABEL_OF_CLASS = [0, 1, 2, 4] as const;

export function isBratsLabel(value: number): value is BratsLabel {
  return value === 0 || value === 1 || value === 2 || value === 4;
}

/** Label -> class (4 -> 3); throws for values that are not BraTS labels. */
export function labelToClass(label: number): number {
  if (!isBratsLabel(label)) throw new RangeError(`${label} is not a BraTS label (0, 1, 2, 4)`);
  return label === 4 ? 3 : label;
}

/** Class -> label (3 -> 4); throws for values outside 0..3. */
export function classToLabel(cls: number): BratsLabel {
  const label = LABEL_OF_CLASS[cls];
  if (label === undefined) throw new RangeError(`${cls} is not a class (0..3)`);
  return label;
}

/** Whether a label belongs to a region, e.g. inRegion('TC', 4) is true. */
export function inRegion(region: RegionName, label: number): boolean {
  return (REGIONS[region] as readonly number[]).includes(label);
}
