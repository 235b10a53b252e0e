import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { FedSegError } from '../errors.js';
import type { SegmentationModel } from '../model/network.js';
import { averagePool, upsampleArgmax } from '../preprocess/downsample.js';
import type { CaseTensor, ClassVolume } from '../preprocess/layout.js';
import { tf } from '../tf/backend.js';

export type Shape3 = [number, number, number];

export interface SlidingWindowOptions {
  /** Window size; default the model's inputShape but at least 64 per axis, clipped to the volume. */
  window?: Shape3;
  /** Fraction of a window shared with its neighbour along each axis (default 0.5). */
  overlap?: number;
  /** 'gaussian' weights window centres more than edges (nnU-Net style, sigma = window / 8); default. */
  blending?: 'gaussian' | 'uniform';
  /** Windows per forward pass (default 1: bounded memory). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

const MIN_DEFAULT_WINDOW = 64;

/** Window start positions along one axis: evenly spaced, first at 0, last flush with the end. */
export function windowStarts(size: number, window: number, overlap: number): number[] {
  if (window >= size) return [0];
  const stride = Math.max(1, Math.round(window * (1 - overlap)));
  const count = Math.ceil((size - window) / stride) + 1;
  return Array.from({ length: count }, (_, n) => Math.round((n * (size - window)) / (count - 1)));
}

/** Separable Gaussian importance map over a window (peak 1, floored so edges still count). */
function importanceMap(window: Shape3, blending: 'gaussian' | 'uniform'): Float32Array {
  const [a, b, c] = window;
  const map = new Float32Array(a * b * c);
  if (blending === 'uniform') return map.fill(1);
  const profile = (n: number) =>
    Array.from({ length: n }, (_, i) => Math.exp(-(((i - (n - 1) / 2) / (n / 8)) ** 2) / 2));
  const [pa, pb, pc] = [profile(a), profile(b), profile(c)];
  let v = 0;
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < c; k++) map[v++] = Math.max(pa[i] * pb[j] * pc[k], 1e-3);
  return map;
}

function extractWindow(image: CaseTensor, origin: Shape3, window: Shape3, out: Float32Array, offset: number): void {
  const [, nj, nk, nc] = image.shape;
  const row = window[2] * nc;
  for (let a = 0; a < window[0]; a++) {
    for (let b = 0; b < window[1]; b++) {
      const src = (((origin[0] + a) * nj + origin[1] + b) * nk + origin[2]) * nc;
      out.set(image.data.subarray(src, src + row), offset + (a * window[1] + b) * row);
    }
  }
}

/**
 * Class map of a whole preprocessed volume by sliding-window inference: windows overlap, their
 * softmax outputs are blended with an importance map, and the argmax is taken per voxel. Peak
 * memory is one batch of windows plus a float32 score volume (4 classes).
 *
 * `image` is the preprocessed crop at its own resolution. A model with `downsample` f > 1 sees it
 * block-averaged by f, as it was trained, and its probabilities come back to the crop's grid by
 * trilinear interpolation, so every caller gets classes on the grid it passed in.
 */
export async function predictVolume(model: SegmentationModel, image: CaseTensor, options: SlidingWindowOptions = {}): Promise<ClassVolume> {
  const reduction = model.config.downsample;
  if (image.shape.slice(0, 3).some((n) => n % reduction !== 0)) {
    throw new FedSegError(`the model reads the crop downsampled x${reduction}, which must divide the crop ${image.shape.slice(0, 3).join('x')}`, { field: 'downsample' });
  }
  if (reduction === 1) return predictScores(model, image, options).then(({ scores, shape }) => argmaxClasses(scores, shape, model.config.numClasses));
  const { scores, shape } = await predictScores(model, averagePool(image, reduction), options);
  return upsampleArgmax(normalise(scores, model.config.numClasses), shape, model.config.numClasses, reduction);
}

/** Importance-weighted sums of class probabilities [i][j][k][class] over the windows covering each voxel. */
async function predictScores(model: SegmentationModel, image: CaseTensor, options: SlidingWindowOptions): Promise<{ scores: Float32Array; shape: Shape3 }> {
  const [ni, nj, nk, nc] = image.shape;
  const { numClasses, inChannels, depth } = model.config;
  if (nc !== inChannels) throw new FedSegError(`image has ${nc} channels, the model expects ${inChannels}`, { field: 'channels' });
  const factor = 2 ** (depth - 1);
  // Small training patches make poor windows: per-window overhead dominates and 32^3 at overlap 0.5
  // means 343 windows per crop. The network is fully convolutional, so a larger window is exact.
  const requested = options.window ?? (model.config.inputShape.map((s) => Math.max(s, MIN_DEFAULT_WINDOW)) as Shape3);
  const window = requested.map((w, axis) => Math.min(w, [ni, nj, nk][axis])) as Shape3;
  if (window.some((w) => w % factor !== 0)) {
    throw new FedSegError(`window ${window.join('x')} must be divisible by 2^(depth-1) = ${factor} (volume ${ni}x${nj}x${nk})`, { field: 'window' });
  }
  const overlap = options.overlap ?? 0.5;
  if (!(overlap >= 0 && overlap < 1)) throw new FedSegError(`overlap must be in [0, 1), got ${overlap}`, { field: 'overlap' });
  const weights = importanceMap(window, options.blending ?? 'gaussian');
  const origins: Shape3[] = [];
  for (const i of windowStarts(ni, window[0], overlap)) for (const j of windowStarts(nj, window[1], overlap)) for (const k of windowStarts(nk, window[2], overlap)) origins.push([i, j, k]);

  const scores = new Float32Array(ni * nj * nk * numClasses);
  const windowVoxels = window[0] * window[1] * window[2];
  const batchSize = Math.max(1, options.batchSize ?? 1);
  for (let first = 0; first < origins.length; first += batchSize) {
    options.signal?.throwIfAborted();
    const batch = origins.slice(first, first + batchSize);
    const input = new Float32Array(batch.length * windowVoxels * nc);
    batch.forEach((origin, n) => extractWindow(image, origin, window, input, n * windowVoxels * nc));
    const x = tf.tensor5d(input, [batch.length, ...window, nc]);
    const probabilities = model.predict(x);
    const values = await probabilities.data();
    x.dispose();
    probabilities.dispose();
    batch.forEach((origin, n) => {
      let v = 0;
      for (let a = 0; a < window[0]; a++) {
        for (let b = 0; b < window[1]; b++) {
          let dst = (((origin[0] + a) * nj + origin[1] + b) * nk + origin[2]) * numClasses;
          for (let c = 0; c < window[2]; c++, v++) {
            const w = weights[v];
            const src = (n * windowVoxels + v) * numClasses;
            for (let k = 0; k < numClasses; k++) scores[dst++] += w * values[src + k];
          }
        }
      }
    });
    options.onProgress?.(Math.min(first + batchSize, origins.length), origins.length);
    await yieldToEventLoop();
  }

  return { scores, shape: [ni, nj, nk] };
}

/**
 * Each voxel's softmax sums to 1, so its blended scores sum to its total window weight: divide by it
 * so that interpolating between voxels covered by different windows compares like with like (the
 * argmax alone needs no normalisation).
 */
function normalise(scores: Float32Array, numClasses: number): Float32Array {
  for (let v = 0; v < scores.length; v += numClasses) {
    let total = 0;
    for (let k = 0; k < numClasses; k++) total += scores[v + k];
    for (let k = 0; k < numClasses; k++) scores[v + k] /= total;
  }
  return scores;
}

function argmaxClasses(scores: Float32Array, shape: Shape3, numClasses: number): ClassVolume {
  const classes = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let v = 0; v < classes.length; v++) {
    let best = 0;
    for (let k = 1; k < numClasses; k++) if (scores[v * numClasses + k] > scores[v * numClasses + best]) best = k;
    classes[v] = best;
  }
  return { shape, data: classes };
}
