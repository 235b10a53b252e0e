/**
 * Exact squared Euclidean distance transform with anisotropic voxel spacing
 * (Felzenszwalb & Huttenlocher 2012): three separable 1-D lower-envelope passes, O(voxels).
 */
import type { Dims3, Spacing3 } from './types.js';

/**
 * Squared distance in mm^2 from every voxel to the nearest feature voxel (`features[i] !== 0`).
 * Layout is NIfTI order: index = i + nx * (j + ny * k). Voxels of a grid without any feature get Infinity.
 */
export function squaredDistanceTransform(features: ArrayLike<number>, dims: Dims3, spacing: Spacing3): Float64Array {
  const [nx, ny, nz] = dims;
  const total = nx * ny * nz;
  if (features.length !== total) throw new RangeError(`features has ${features.length} voxels, dims say ${total}`);
  const dist = new Float64Array(total);
  for (let i = 0; i < total; i++) dist[i] = features[i] !== 0 ? 0 : Infinity;
  const longest = Math.max(nx, ny, nz);
  const scratch = new LowerEnvelope(longest);
  // Pass along i (contiguous), then j, then k; each pass reads the previous pass's output.
  transformLines(dist, nx, 1, ny * nz, (line) => (line % ny) * nx + Math.floor(line / ny) * nx * ny, spacing[0], scratch);
  transformLines(dist, ny, nx, nx * nz, (line) => (line % nx) + Math.floor(line / nx) * nx * ny, spacing[1], scratch);
  transformLines(dist, nz, nx * ny, nx * ny, (line) => line, spacing[2], scratch);
  return dist;
}

/** Runs the 1-D transform over `lines` lines of `length` voxels `stride` apart, starting at `start(line)`. */
function transformLines(
  dist: Float64Array, length: number, stride: number, lines: number,
  start: (line: number) => number, step: number, scratch: LowerEnvelope,
): void {
  const { input, output } = scratch;
  for (let line = 0; line < lines; line++) {
    const base = start(line);
    let anyFinite = false;
    for (let q = 0, at = base; q < length; q++, at += stride) {
      const value = dist[at];
      input[q] = value;
      if (value !== Infinity) anyFinite = true;
    }
    if (!anyFinite) continue;
    scratch.transform(length, step);
    for (let q = 0, at = base; q < length; q++, at += stride) dist[at] = output[q];
  }
}

/** Buffers for the 1-D lower envelope of parabolas, reused across lines to avoid allocation. */
class LowerEnvelope {
  readonly input: Float64Array;
  readonly output: Float64Array;
  private readonly vertex: Int32Array;
  private readonly boundary: Float64Array;

  constructor(longest: number) {
    this.input = new Float64Array(longest);
    this.output = new Float64Array(longest);
    this.vertex = new Int32Array(longest);
    this.boundary = new Float64Array(longest + 1);
  }

  /** output[p] = min_q ((step * (p - q))^2 + input[q]) over finite input[q]; at least one must be finite. */
  transform(length: number, step: number): void {
    const { input: f, output, vertex: v, boundary: z } = this;
    let k = -1;
    for (let q = 0; q < length; q++) {
      const fq = f[q];
      if (fq === Infinity) continue;
      const xq = q * step;
      if (k < 0) {
        k = 0;
        v[0] = q;
        z[0] = -Infinity;
        z[1] = Infinity;
        continue;
      }
      let s: number;
      while (true) {
        const vk = v[k];
        const xv = vk * step;
        s = (fq + xq * xq - (f[vk] + xv * xv)) / (2 * (xq - xv));
        if (s > z[k]) break;
        k--; // z[0] is -Infinity, so k never drops below 0 here
      }
      k++;
      v[k] = q;
      z[k] = s;
      z[k + 1] = Infinity;
    }
    let j = 0;
    for (let p = 0; p < length; p++) {
      const xp = p * step;
      while (z[j + 1] < xp) j++;
      const dx = xp - v[j] * step;
      output[p] = dx * dx + f[v[j]];
    }
  }
}
