/** BraTS labels as the original project showed them: 1 blue, 2 green, 4 yellow; background transparent. */
export const LABELS = [
  { value: 1, name: 'Necrotic / non-enhancing core', short: 'NCR/NET', rgb: [0, 0, 255] },
  { value: 2, name: 'Peritumoral edema', short: 'ED', rgb: [0, 255, 0] },
  { value: 4, name: 'GD-enhancing tumour', short: 'ET', rgb: [255, 255, 0] },
] as const;
export type LabelValue = (typeof LABELS)[number]['value'];

/** Niivue drawing lookup table (256 RGBA entries): the BraTS colours, hidden labels and everything else transparent. */
export function drawLut(visible: Record<LabelValue, boolean>): { lut: Uint8ClampedArray; labels: string[] } {
  const lut = new Uint8ClampedArray(256 * 4);
  const labels = Array.from({ length: 256 }, () => '');
  for (const label of LABELS) {
    lut.set([...label.rgb, visible[label.value] ? 255 : 0], label.value * 4);
    labels[label.value] = label.short;
  }
  return { lut, labels };
}

/** Tumour volume per region in mL: ET = {4}, TC = {1, 4}, WT = {1, 2, 4}. */
export function regionVolumesMl(labels: ArrayLike<number>, voxelMm3: number): { et: number; tc: number; wt: number } {
  let n1 = 0;
  let n2 = 0;
  let n4 = 0;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 1) n1++;
    else if (v === 2) n2++;
    else if (v === 4) n4++;
  }
  const ml = (count: number) => (count * voxelMm3) / 1000;
  return { et: ml(n4), tc: ml(n1 + n4), wt: ml(n1 + n2 + n4) };
}
