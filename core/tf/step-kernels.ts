/**
 * Non-convolution kernels that dominated a U-Net training step on wasm after the conv kernels were
 * fast (profiled with bench/conv.ts's neighbour, see the closing note):
 *  - Identity and same-dtype Cast copied whole activations on wasm. TF.js clones every tensor it saves
 *    for the backward pass through Identity, so each step copied every activation once more. They now
 *    share the buffer (reference counted, as the cpu backend and wasm's own Reshape already do;
 *    TF.js never writes a tensor's data in place).
 *  - MaxPool3DGrad (and, on cpu, MaxPool3D) for the U-Net's 2x2x2 stride-2 'valid' pooling: one pass
 *    over raw arrays instead of the generic windowed loops. The gradient goes to the last maximal voxel of each
 *    window in (d, h, w) order, exactly as TF.js's reference cpu kernel decides ties (ReLU outputs tie
 *    at 0 often). Other pooling geometries use the stock kernels.
 * FEDSEG_FAST_OPS=0 keeps the stock kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { runRawKernel } from './raw-kernel.js';

type Shape5 = [number, number, number, number, number];
interface PoolAttrs {
  filterSize: number | [number, number, number];
  strides: number | [number, number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: string;
}

const installed = new Set<string>();
const stockConfigs = new Map<string, KernelConfig>();

/** TF.js's kernel that FedSeg replaced (tests compare against it). */
export function stockStepKernel(backendName: string, kernelName: string): KernelConfig | undefined {
  return stockConfigs.get(`${backendName}/${kernelName}`);
}

export function installStepKernels(backendName: string): boolean {
  if (process.env.FEDSEG_FAST_OPS === '0' || (backendName !== 'wasm' && backendName !== 'cpu')) return false;
  if (installed.has(backendName)) return true;
  installed.add(backendName);
  if (backendName === 'wasm') {
    replace(tf.Identity, backendName, (stock) => (args) => shareBuffer(args, args.inputs.x, args.inputs.x.dtype) ?? stock(args));
    replace(tf.Cast, backendName, (stock) => (args) =>
      shareBuffer(args, args.inputs.x, (args.attrs as { dtype: string }).dtype) ?? stock(args));
  }
  replace(tf.MaxPool3D, backendName, (stock) => (args) => maxPool3d(backendName, args) ?? stock(args));
  replace(tf.MaxPool3DGrad, backendName, (stock) => (args) => maxPool3dGrad(backendName, args) ?? stock(args));
  return true;
}

type Args = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };
type Fn = (args: Args) => TensorInfo | TensorInfo[];

function replace(kernelName: string, backendName: string, make: (stock: Fn) => Fn): void {
  const stock: KernelConfig | undefined = tf.getKernel(kernelName, backendName);
  if (!stock) return;
  stockConfigs.set(`${backendName}/${kernelName}`, stock);
  const stockFn = stock.kernelFunc as unknown as Fn;
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ ...stock, kernelFunc: make(stockFn) as unknown as KernelFunc });
}

function shareBuffer(args: Args, x: TensorInfo, dtype: string): TensorInfo | undefined {
  if (x.dtype !== dtype || dtype === 'string' || dtype === 'complex64') return undefined;
  (args.backend as { incRef(dataId: object): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** True for 2x2x2 windows, stride 2, 'valid' (or 0) padding, NDHWC: the U-Net's pooling. */
function isHalving(attrs: PoolAttrs): boolean {
  const all2 = (v: number | number[]) => (Array.isArray(v) ? v.every((e) => e === 2) : v === 2);
  return all2(attrs.filterSize) && all2(attrs.strides) && (attrs.pad === 'valid' || attrs.pad === 0) &&
    (attrs.dataFormat === undefined || attrs.dataFormat === 'NDHWC');
}

/** Offsets of the 8 window voxels relative to the window's first voxel, in (d, h, w) order. */
function windowOffsets([, , h, w, c]: number[]): number[] {
  const offsets: number[] = [];
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) for (let e = 0; e < 2; e++) offsets.push(((a * h + b) * w + e) * c);
  return offsets;
}

/** Calls visit(inBase, outBase) for every 2x2x2 window (first voxel offset, output voxel offset). */
function forEachWindow(shape: number[], visit: (inBase: number, outBase: number) => void): void {
  const [n, d, h, w, c] = shape;
  const [od, oh, ow] = [Math.floor(d / 2), Math.floor(h / 2), Math.floor(w / 2)];
  let outBase = 0;
  for (let b = 0; b < n; b++)
    for (let z = 0; z < od; z++)
      for (let y = 0; y < oh; y++)
        for (let x = 0; x < ow; x++, outBase += c) visit((((b * d + 2 * z) * h + 2 * y) * w + 2 * x) * c, outBase);
}

/** Forward on cpu only: the wasm backend's own MaxPool3D is already a fast native loop. */
function maxPool3d(backendName: string, args: Args): TensorInfo | undefined {
  const x = args.inputs.x;
  if (backendName !== 'cpu' || !isHalving(args.attrs as unknown as PoolAttrs)) return undefined;
  const [n, d, h, w, c] = x.shape as Shape5;
  const outShape = [n, Math.floor(d / 2), Math.floor(h / 2), Math.floor(w / 2), c];
  const [, o1, o2, o3, o4, o5, o6, o7] = windowOffsets(x.shape);
  return runRawKernel(backendName, args.backend, [x], outShape, ([xs], out) => {
    forEachWindow(x.shape, (inBase, outBase) => {
      for (let ch = 0; ch < c; ch++) {
        const i = inBase + ch;
        out[outBase + ch] = Math.max(xs[i], xs[i + o1], xs[i + o2], xs[i + o3], xs[i + o4], xs[i + o5], xs[i + o6], xs[i + o7]);
      }
    });
  });
}

function maxPool3dGrad(backendName: string, args: Args): TensorInfo | undefined {
  const { dy, input } = args.inputs;
  if (!isHalving(args.attrs as unknown as PoolAttrs)) return undefined;
  const c = input.shape[4];
  const [, o1, o2, o3, o4, o5, o6, o7] = windowOffsets(input.shape);
  return runRawKernel(backendName, args.backend, [input, dy], input.shape, ([xs, g], dx) => {
    dx.fill(0);
    forEachWindow(input.shape, (inBase, outBase) => {
      for (let ch = 0; ch < c; ch++) {
        // Last maximal voxel in (d, h, w) order wins, as in TF.js's reference kernel.
        const i = inBase + ch;
        let best = i;
        let m = xs[i];
        if (xs[i + o1] >= m) { m = xs[i + o1]; best = i + o1; }
        if (xs[i + o2] >= m) { m = xs[i + o2]; best = i + o2; }
        if (xs[i + o3] >= m) { m = xs[i + o3]; best = i + o3; }
        if (xs[i + o4] >= m) { m = xs[i + o4]; best = i + o4; }
        if (xs[i + o5] >= m) { m = xs[i + o5]; best = i + o5; }
        if (xs[i + o6] >= m) { m = xs[i + o6]; best = i + o6; }
        if (xs[i + o7] >= m) best = i + o7;
        dx[best] = g[outBase + ch];
      }
    });
  });
}
