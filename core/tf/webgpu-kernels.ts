/**
 * Fixes to tfjs-backend-webgpu 4.22 kernels that FedSeg's models reach.
 *
 * Binary ops with a rank-5 operand and a short vector (a bias [c], c < 128, against [n, d, h, w, c])
 * take the package's shared-memory path, which indexes the output coordinates as `coords[4]`; for
 * rank 5 those coordinates are a WGSL struct, so the shader does not compile, the whole command
 * buffer is dropped and every tensor in it reads as zeros (found by test/tf/fused-conv.test.ts on
 * SwiftShader). Such a call is run on the operand reshaped to [rows, c] — same values, a rank-2 shader
 * — and the result reshaped back. Reshape on webgpu only shares the buffer.
 *
 * Transpose of rank 5 generates a shader that does not compile either (a sum over every axis but the
 * channels — the loss's Dice sums — transposes [n, d, h, w, c] to [c, n, d, h, w]). Input axes that
 * stay neighbours in the permutation are merged first, which brings every transpose FedSeg makes to
 * rank 2 or 3. The package's reductions call its transpose directly (not through the kernel registry),
 * so they get the same treatment: neighbouring axes that are all reduced or all kept are merged.
 * PadV2 of rank 5 (the gradient of a slice) fails the same way; an unpadded axis is merged into the
 * axis before it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** Every webgpu kernel built on BinaryOpProgram with inputs {a, b} (Prelu's are {x, alpha} and it is not used). */
const BINARY_KERNELS = [
  tf.Add, tf.Atan2, tf.Equal, tf.FloorDiv, tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual, tf.LogicalAnd, tf.LogicalOr,
  tf.Maximum, tf.Minimum, tf.Mod, tf.Multiply, tf.NotEqual, tf.Pow, tf.RealDiv, tf.SquaredDifference, tf.Sub,
];

/** The package's shared-memory condition (binary_op_webgpu.js), restricted to the ranks its shader breaks on. */
function brokenSharedPath(big: readonly number[], small: readonly number[]): boolean {
  return big.length >= 5 && small.length === 1 && small[0] < 128;
}

/**
 * The same transpose on fewer axes: runs of input axes that stay consecutive in `perm` become one axis.
 * Returns the merged input shape and permutation.
 */
export function mergeTransposeAxes(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const runs: number[][] = [];
  for (const axis of perm) {
    const run = runs[runs.length - 1];
    if (run && axis === run[run.length - 1] + 1) run.push(axis);
    else runs.push([axis]);
  }
  const byInput = [...runs].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInput.map((run) => run.reduce((size, axis) => size * shape[axis], 1)),
    perm: runs.map((run) => byInput.indexOf(run)),
  };
}

/** Reductions whose webgpu kernels transpose internally, with the attribute naming their axes. */
const REDUCTIONS: [string, 'axis' | 'reductionIndices', boolean][] = [
  [tf.Sum, 'axis', true], [tf.Mean, 'axis', true], [tf.Max, 'reductionIndices', true], [tf.Min, 'axis', true],
  [tf.Prod, 'axis', true], [tf.All, 'axis', true], [tf.Any, 'axis', true], [tf.ArgMax, 'axis', false], [tf.ArgMin, 'axis', false],
];

/** The same reduction on fewer axes: neighbouring axes that are all reduced or all kept become one. */
export function mergeReductionAxes(shape: readonly number[], axes: readonly number[]): { shape: number[]; axes: number[] } {
  const merged: number[] = [];
  const mergedAxes: number[] = [];
  shape.forEach((size, axis) => {
    const reduced = axes.includes(axis);
    if (axis > 0 && reduced === axes.includes(axis - 1)) merged[merged.length - 1] *= size;
    else {
      merged.push(size);
      if (reduced) mergedAxes.push(merged.length - 1);
    }
  });
  return { shape: merged, axes: mergedAxes };
}

/** The same padding on fewer axes: each unpadded axis joins the axis before it (whose padding scales by its size). */
export function mergePadAxes(shape: readonly number[], paddings: readonly (readonly [number, number])[]): { shape: number[]; paddings: [number, number][] } {
  const merged: number[] = [];
  const mergedPaddings: [number, number][] = [];
  shape.forEach((size, axis) => {
    const [before, after] = paddings[axis];
    if (axis > 0 && before === 0 && after === 0) {
      merged[merged.length - 1] *= size;
      const last = mergedPaddings[mergedPaddings.length - 1];
      last[0] *= size;
      last[1] *= size;
    } else {
      merged.push(size);
      mergedPaddings.push([before, after]);
    }
  });
  return { shape: merged, paddings: mergedPaddings };
}

type Args = { inputs: { a: TensorInfo; b: TensorInfo }; backend: { disposeData(dataId: object): void }; attrs?: object };

let installed = false;

/** Wraps the binary kernels on webgpu (idempotent). */
export function installWebGpuKernels(backendName: string): void {
  if (backendName !== 'webgpu' || installed) return;
  installed = true;
  const reshape = tf.getKernel(tf.Reshape, 'webgpu')!.kernelFunc as unknown as (args: object) => TensorInfo;
  for (const name of BINARY_KERNELS) {
    const stock: KernelConfig | undefined = tf.getKernel(name, 'webgpu');
    if (!stock) continue;
    const stockFn = stock.kernelFunc as unknown as (args: Args) => TensorInfo;
    const kernelFunc = (args: Args): TensorInfo => {
      const { a, b } = args.inputs;
      const key = brokenSharedPath(a.shape, b.shape) ? 'a' : brokenSharedPath(b.shape, a.shape) ? 'b' : undefined;
      if (!key) return stockFn(args);
      const big = args.inputs[key];
      const last = big.shape[big.shape.length - 1];
      const flat = reshape({ inputs: { x: big }, backend: args.backend, attrs: { shape: [-1, last] } });
      const out = stockFn({ ...args, inputs: { ...args.inputs, [key]: flat } });
      const result = reshape({ inputs: { x: out }, backend: args.backend, attrs: { shape: tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape) } });
      args.backend.disposeData(flat.dataId);
      args.backend.disposeData(out.dataId);
      return result;
    };
    replace(stock, kernelFunc);
  }
  installReductions(reshape);
  const pad = tf.getKernel(tf.PadV2, 'webgpu');
  if (pad) {
    const stockFn = pad.kernelFunc as unknown as (args: object) => TensorInfo;
    type PadArgs = { inputs: { x: TensorInfo }; backend: Args['backend']; attrs: { paddings: [number, number][]; constantValue: number } };
    replace(pad, (args: PadArgs) => {
      const { x } = args.inputs;
      if (x.shape.length < 5) return stockFn(args);
      const merged = mergePadAxes(x.shape, args.attrs.paddings);
      const outShape = x.shape.map((size, axis) => size + args.attrs.paddings[axis][0] + args.attrs.paddings[axis][1]);
      const flat = reshape({ inputs: { x }, backend: args.backend, attrs: { shape: merged.shape } });
      const out = stockFn({ ...args, inputs: { x: flat }, attrs: { ...args.attrs, paddings: merged.paddings } });
      const result = reshape({ inputs: { x: out }, backend: args.backend, attrs: { shape: outShape } });
      args.backend.disposeData(flat.dataId);
      args.backend.disposeData(out.dataId);
      return result;
    });
  }
  const transpose = tf.getKernel(tf.Transpose, 'webgpu');
  if (transpose) {
    const stockFn = transpose.kernelFunc as unknown as (args: object) => TensorInfo;
    replace(transpose, (args: { inputs: { x: TensorInfo }; backend: Args['backend']; attrs: { perm: number[] } }) => {
      const { x } = args.inputs;
      if (x.shape.length < 5) return stockFn(args);
      const merged = mergeTransposeAxes(x.shape, args.attrs.perm);
      const flat = reshape({ inputs: { x }, backend: args.backend, attrs: { shape: merged.shape } });
      const out = stockFn({ ...args, inputs: { x: flat }, attrs: { perm: merged.perm } });
      const result = reshape({ inputs: { x: out }, backend: args.backend, attrs: { shape: args.attrs.perm.map((axis) => x.shape[axis]) } });
      args.backend.disposeData(flat.dataId);
      args.backend.disposeData(out.dataId);
      return result;
    });
  }
}

function installReductions(reshape: (args: object) => TensorInfo): void {
  for (const [name, attr, hasKeepDims] of REDUCTIONS) {
    const stock = tf.getKernel(name, 'webgpu');
    if (!stock) continue;
    const stockFn = stock.kernelFunc as unknown as (args: object) => TensorInfo;
    type ReduceArgs = { inputs: { x: TensorInfo }; backend: Args['backend']; attrs: Record<string, unknown> };
    replace(stock, (args: ReduceArgs) => {
      const { x } = args.inputs;
      if (x.shape.length < 5) return stockFn(args);
      const axes = tf.util.parseAxisParam(args.attrs[attr] as number | number[], x.shape);
      const merged = mergeReductionAxes(x.shape, axes);
      const keepDims = hasKeepDims && Boolean(args.attrs.keepDims);
      const outShape = keepDims ? x.shape.map((size, axis) => (axes.includes(axis) ? 1 : size)) : x.shape.filter((_, axis) => !axes.includes(axis));
      const flat = reshape({ inputs: { x }, backend: args.backend, attrs: { shape: merged.shape } });
      const mergedAxis = hasKeepDims ? merged.axes : merged.axes[0];
      const out = stockFn({ ...args, inputs: { x: flat }, attrs: { ...args.attrs, [attr]: mergedAxis } });
      const result = reshape({ inputs: { x: out }, backend: args.backend, attrs: { shape: outShape } });
      args.backend.disposeData(flat.dataId);
      args.backend.disposeData(out.dataId);
      return result;
    });
  }
}

function replace(stock: KernelConfig, kernelFunc: (args: never) => TensorInfo): void {
  tf.unregisterKernel(stock.kernelName, 'webgpu');
  tf.registerKernel({ ...stock, kernelFunc: kernelFunc as unknown as KernelFunc });
}
