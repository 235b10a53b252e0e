/**
 * Hard Dice per BraTS region on class volumes (classes 0..3, class 3 = label 4), summed over a set of
 * patches: ET = {3}, TC = {1, 3}, WT = {1, 2, 3}. Both empty counts as 1, as in SPEC section 4.
 */
export interface PatchRegionDice {
  ET: number;
  TC: number;
  WT: number;
}

const REGION_CLASSES: Record<keyof PatchRegionDice, readonly number[]> = { ET: [3], TC: [1, 3], WT: [1, 2, 3] };

export class RegionDiceAccumulator {
  private readonly counts = { ET: [0, 0, 0], TC: [0, 0, 0], WT: [0, 0, 0] } as Record<keyof PatchRegionDice, [number, number, number]>;

  /** Adds one prediction/truth pair; counts = [intersection, predicted, true]. */
  add(predicted: ArrayLike<number>, truth: ArrayLike<number>): void {
    for (const region of Object.keys(REGION_CLASSES) as (keyof PatchRegionDice)[]) {
      const member = new Uint8Array(4);
      for (const c of REGION_CLASSES[region]) member[c] = 1;
      const count = this.counts[region];
      for (let v = 0; v < truth.length; v++) {
        const p = member[predicted[v]];
        const t = member[truth[v]];
        count[0] += p & t;
        count[1] += p;
        count[2] += t;
      }
    }
  }

  result(): PatchRegionDice {
    const dice = ([inter, pred, truth]: number[]) => (pred + truth === 0 ? 1 : (2 * inter) / (pred + truth));
    return { ET: dice(this.counts.ET), TC: dice(this.counts.TC), WT: dice(this.counts.WT) };
  }
}
