import { FedSegError } from '../errors.js';
import type { SeededRandom } from '../model/random.js';
import type { Shape3 } from '../inference/sliding-window.js';
import type { TrainingCase } from './data.js';

export type { Shape3 };

/** One training sample: image [p0, p1, p2, channels] row-major and classes [p0, p1, p2]. */
export interface Patch {
  image: Float32Array;
  classes: Uint8Array;
}

/** Label-preserving training augmentation. */
export interface Augmentation {
  /** Randomly mirror left-right (the i axis). */
  flip: boolean;
  /**
   * Per-channel random gain in [1 - s, 1 + s] and offset in [-s, s] on brain voxels (background stays 0):
   * what min-max scaling leaves of scanner differences in contrast and intensity scale between hospitals.
   */
  intensityScale: number;
  intensityShift: number;
}

/** Flips plus +-10 % gain and +-0.05 offset per channel. */
export const DEFAULT_AUGMENTATION: Augmentation = { flip: true, intensityScale: 0.1, intensityShift: 0.05 };
export const NO_AUGMENTATION: Augmentation = { flip: false, intensityScale: 0, intensityShift: 0 };

export interface PatchSampling {
  patch: Shape3;
  /** Probability that a patch is centred on a random tumour voxel rather than placed uniformly. */
  tumourBias: number;
  augmentation: Augmentation;
}

const tumourIndexCache = new WeakMap<TrainingCase, Uint32Array>();

/** Flat indices of the case's tumour voxels (class > 0), computed once per case. */
function tumourVoxels(item: TrainingCase): Uint32Array {
  let found = tumourIndexCache.get(item);
  if (!found) {
    const { data } = item.classes;
    let n = 0;
    for (let v = 0; v < data.length; v++) if (data[v] > 0) n++;
    found = new Uint32Array(n);
    n = 0;
    for (let v = 0; v < data.length; v++) if (data[v] > 0) found[n++] = v;
    tumourIndexCache.set(item, found);
  }
  return found;
}

/** Checks that the patch fits the case; an error names the case otherwise. */
export function checkPatchFits(item: TrainingCase, patch: Shape3): void {
  const shape = item.classes.shape;
  if (patch.some((p, axis) => p > shape[axis])) {
    throw new FedSegError(`patch ${patch.join('x')} is larger than the preprocessed case (${shape.join('x')})`, { caseId: item.caseId, field: 'patch' });
  }
}

/** Picks a patch origin: tumour-centred with probability `tumourBias` (when the case has tumour), else uniform. */
export function samplePatchOrigin(item: TrainingCase, sampling: PatchSampling, rng: SeededRandom): Shape3 {
  const shape = item.classes.shape;
  const tumour = tumourVoxels(item);
  const { patch } = sampling;
  if (tumour.length > 0 && rng.next() < sampling.tumourBias) {
    const v = tumour[rng.int(tumour.length)];
    const centre = [Math.floor(v / (shape[1] * shape[2])), Math.floor(v / shape[2]) % shape[1], v % shape[2]];
    return centre.map((c, axis) => Math.min(Math.max(c - Math.floor(patch[axis] / 2), 0), shape[axis] - patch[axis])) as Shape3;
  }
  return shape.map((s, axis) => rng.int(s - patch[axis] + 1)) as Shape3;
}

/** Copies the patch at `origin` (optionally mirrored along i) out of the case. */
export function extractPatch(item: TrainingCase, origin: Shape3, patch: Shape3, mirror = false): Patch {
  const [, nj, nk, nc] = item.image.shape;
  const [pi, pj, pk] = patch;
  const image = new Float32Array(pi * pj * pk * nc);
  const classes = new Uint8Array(pi * pj * pk);
  const row = pk * nc;
  for (let a = 0; a < pi; a++) {
    const i = origin[0] + (mirror ? pi - 1 - a : a);
    for (let b = 0; b < pj; b++) {
      const src = (i * nj + origin[1] + b) * nk + origin[2];
      const dst = (a * pj + b) * pk;
      image.set(item.image.data.subarray(src * nc, src * nc + row), dst * nc);
      classes.set(item.classes.data.subarray(src, src + pk), dst);
    }
  }
  return { image, classes };
}

/** A random, augmented training patch of the case. */
export function samplePatch(item: TrainingCase, sampling: PatchSampling, rng: SeededRandom): Patch {
  const { augmentation } = sampling;
  const origin = samplePatchOrigin(item, sampling, rng);
  const patch = extractPatch(item, origin, sampling.patch, augmentation.flip && rng.next() < 0.5);
  if (augmentation.intensityScale > 0 || augmentation.intensityShift > 0) {
    const nc = item.image.shape[3];
    const gain = Array.from({ length: nc }, () => 1 + rng.uniform(-augmentation.intensityScale, augmentation.intensityScale));
    const offset = Array.from({ length: nc }, () => rng.uniform(-augmentation.intensityShift, augmentation.intensityShift));
    const { image } = patch;
    for (let v = 0; v < image.length; v += nc) {
      for (let c = 0; c < nc; c++) if (image[v + c] !== 0) image[v + c] = image[v + c] * gain[c] + offset[c];
    }
  }
  return patch;
}
