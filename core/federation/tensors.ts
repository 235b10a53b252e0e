/**
 * The federation's in-memory view of a model's weights: an ordered list of named float32 tensors.
 * Strategies, validation and the wire all work on this; core/weights turns it into model files.
 */
import { elementCount, type NamedTensor } from '../weights/types.js';

export type { NamedTensor };

export type TensorList = NamedTensor[];

export function parameterCount(tensors: TensorList): number {
  return tensors.reduce((sum, t) => sum + t.data.length, 0);
}

/** First difference between two manifests (names, order, shapes), or null when they match. */
export function manifestMismatch(expected: TensorList, actual: TensorList): string | null {
  if (expected.length !== actual.length) return `expected ${expected.length} tensors, got ${actual.length}`;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    if (e.name !== a.name) return `tensor ${i} is named "${a.name}", expected "${e.name}"`;
    if (e.shape.length !== a.shape.length || e.shape.some((d, j) => d !== a.shape[j])) {
      return `tensor "${e.name}" has shape [${a.shape.join(',')}], expected [${e.shape.join(',')}]`;
    }
    if (a.data.length !== elementCount(a.shape)) return `tensor "${e.name}" holds ${a.data.length} values for shape [${a.shape.join(',')}]`;
  }
  return null;
}

/** Name of the first tensor holding NaN or +-Infinity, or null when all values are finite. */
export function firstNonFinite(tensors: TensorList): string | null {
  for (const t of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      // x - x is NaN exactly for NaN and +-Infinity; cheaper than Number.isFinite per element.
      if (d[i] - d[i] !== 0) return t.name;
    }
  }
  return null;
}

/** L2 norm of (a - b) over all tensors, accumulated in float64; b omitted means the norm of a. */
export function l2Distance(a: TensorList, b?: TensorList): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += b ? squaredDistance(a[k].data, b[k].data) : squaredDistance(a[k].data);
  return Math.sqrt(sum);
}

/** Two loops rather than a branch per value: this runs over every parameter of every update. */
function squaredDistance(x: Float32Array, y?: Float32Array): number {
  let sum = 0;
  if (y) {
    for (let i = 0; i < x.length; i++) {
      const v = x[i] - y[i];
      sum += v * v;
    }
  } else {
    for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  }
  return sum;
}

/** Same manifest as `like`, with the given data arrays. */
export function withData(like: TensorList, data: Float32Array[]): TensorList {
  return like.map((t, i) => ({ name: t.name, shape: [...t.shape], data: data[i] }));
}

/** All tensors' values end to end, in manifest order (the layout secure aggregation masks). */
export function flatten(tensors: TensorList): Float32Array {
  const out = new Float32Array(parameterCount(tensors));
  let offset = 0;
  for (const t of tensors) {
    out.set(t.data, offset);
    offset += t.data.length;
  }
  return out;
}

/** Views of `flat` (laid out as flatten() lays it out) as the tensors of `manifest`: nothing is copied. */
export function viewsOf(manifest: readonly { name: string; shape: readonly number[] }[], flat: Float32Array): TensorList {
  let offset = 0;
  return manifest.map(({ name, shape }) => {
    const size = elementCount(shape);
    const data = flat.subarray(offset, offset + size);
    offset += size;
    return { name, shape: [...shape], data };
  });
}

/** `like` plus a flat update laid out as flatten() lays it out. */
export function plusFlat(like: TensorList, delta: ArrayLike<number>): TensorList {
  if (delta.length !== parameterCount(like)) throw new Error(`a flat update of ${delta.length} values for a model of ${parameterCount(like)}`);
  let offset = 0;
  return withData(like, like.map((t) => {
    const out = new Float32Array(t.data.length);
    for (let i = 0; i < out.length; i++) out[i] = t.data[i] + delta[offset + i];
    offset += out.length;
    return out;
  }));
}
