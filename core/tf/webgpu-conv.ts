/**
 * Tiled WGSL conv3d for the webgpu backend, replacing tfjs-backend-webgpu 4.22's Conv3D,
 * Conv3DBackpropInputV2 and Conv3DBackpropFilterV2 (direct loops: one output per thread, every input
 * read from global memory once per output). Each is an implicit GEMM C[M, N] = sum_k A[m, k] B[k, n]
 * over 64 x TN output tiles with 16-deep K slices staged in workgroup memory; A is gathered from the
 * activation on the fly (no im2col buffer), zero where the window leaves the volume:
 *
 *   forward         m = output voxel, n = out channel, k = (fd, fh, fw, in channel); A = x,  B = filter
 *   backprop input  m = input voxel,  n = in channel,  k = (fd, fh, fw, out channel); A = dy (only the
 *                   taps where (in + pad - f) divides by the stride), B = filter transposed
 *   backprop filter m = (fd, fh, fw, in channel), n = out channel, k = output voxel; A = x, B = dy.
 *                   K is the whole volume (2M at 128^3) and M x N small, so K is split over workgroups
 *                   (split-K) and the partial sums are added by a Sum.
 *
 * Inputs and outputs are passed flat (rank 1/2/3), so none of the package's rank-5 code is used. The
 * layouts, padding and results are those of the ConvEngine contract (conv-engine.ts); the tests compare
 * with TF.js's cpu kernels. FEDSEG_FAST_CONV=0 keeps the stock kernels, as on wasm/cpu.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { geometryFromConvInfo, type Conv3DGeometry } from './conv-engine.js';

type Mode = 'forward' | 'backpropInput' | 'backpropFilter';
type Shape5 = [number, number, number, number, number];

const TM = 64;
const TK = 16;
/** K per split-K workgroup in backprop filter: a multiple of TK; a few hundred slices per workgroup. */
const K_PER_SPLIT = 4096;
/** The most workgroups one dispatch dimension may have (WebGPU's default limit). */
const MAX_DISPATCH = 65535;

/** Geometry integers every shader reads, in this order (one i32 uniform each). */
const GEOMETRY_FIELDS = [
  'batch', 'inDepth', 'inHeight', 'inWidth', 'inChannels', 'outDepth', 'outHeight', 'outWidth', 'outChannels',
  'filterDepth', 'filterHeight', 'filterWidth', 'strideDepth', 'strideHeight', 'strideWidth',
  'dilationDepth', 'dilationHeight', 'dilationWidth', 'padFront', 'padTop', 'padLeft',
] as const satisfies readonly (keyof Conv3DGeometry)[];

/** The GEMM sizes of one call. */
function gemmSizes(mode: Mode, g: Conv3DGeometry): { m: number; n: number; k: number } {
  const outVoxels = g.batch * g.outDepth * g.outHeight * g.outWidth;
  const taps = g.filterDepth * g.filterHeight * g.filterWidth;
  if (mode === 'forward') return { m: outVoxels, n: g.outChannels, k: taps * g.inChannels };
  if (mode === 'backpropInput') return { m: g.batch * g.inDepth * g.inHeight * g.inWidth, n: g.inChannels, k: taps * g.outChannels };
  return { m: taps * g.inChannels, n: g.outChannels, k: outVoxels };
}

/** Output-tile width: the channel count rounded up to 16, 32 or 64 (U-Net layers have 4..256 channels). */
function tileN(n: number): 16 | 32 | 64 {
  return n <= 16 ? 16 : n <= 32 ? 32 : 64;
}

/** WGSL decoding of flat indices into voxel coordinates, shared by the three loaders. */
const HELPERS = `
  fn inIndex(b: i32, d: i32, h: i32, w: i32, c: i32) -> i32 {
    return (((b * uniforms.inDepth + d) * uniforms.inHeight + h) * uniforms.inWidth + w) * uniforms.inChannels + c;
  }
  fn outIndex(b: i32, d: i32, h: i32, w: i32, c: i32) -> i32 {
    return (((b * uniforms.outDepth + d) * uniforms.outHeight + h) * uniforms.outWidth + w) * uniforms.outChannels + c;
  }
  // (b, d, h, w) of an output voxel index, or of an input voxel index with the input's sizes.
  fn outVoxel(v: i32) -> vec4<i32> {
    let w = v % uniforms.outWidth; let t = v / uniforms.outWidth;
    let h = t % uniforms.outHeight; let t2 = t / uniforms.outHeight;
    return vec4<i32>(t2 / uniforms.outDepth, t2 % uniforms.outDepth, h, w);
  }
  fn inVoxel(v: i32) -> vec4<i32> {
    let w = v % uniforms.inWidth; let t = v / uniforms.inWidth;
    let h = t % uniforms.inHeight; let t2 = t / uniforms.inHeight;
    return vec4<i32>(t2 / uniforms.inDepth, t2 % uniforms.inDepth, h, w);
  }
  // (fd, fh, fw) of a filter tap index.
  fn tap(t: i32) -> vec3<i32> {
    let fw = t % uniforms.filterWidth; let r = t / uniforms.filterWidth;
    return vec3<i32>(r / uniforms.filterHeight, r % uniforms.filterHeight, fw);
  }
  fn inside(d: i32, h: i32, w: i32) -> bool {
    return d >= 0 && d < uniforms.inDepth && h >= 0 && h < uniforms.inHeight && w >= 0 && w < uniforms.inWidth;
  }
  // x at the input voxel that output voxel o reads through tap f, or 0 in the padding.
  fn xAt(o: vec4<i32>, f: vec3<i32>, c: i32) -> f32 {
    let d = o.y * uniforms.strideDepth - uniforms.padFront + f.x * uniforms.dilationDepth;
    let h = o.z * uniforms.strideHeight - uniforms.padTop + f.y * uniforms.dilationHeight;
    let w = o.w * uniforms.strideWidth - uniforms.padLeft + f.z * uniforms.dilationWidth;
    if (!inside(d, h, w)) { return 0.0; }
    return A[inIndex(o.x, d, h, w, c)];
  }
  // Which output coordinate reads input coordinate i through tap offset f (stride s, padding p), or -1.
  fn source(i: i32, f: i32, s: i32, p: i32, size: i32) -> i32 {
    let t = i + p - f;
    if (t < 0 || t % s != 0 || t / s >= size) { return -1; }
    return t / s;
  }
`;

/** loadA(m, k) and loadB(k, n) of each mode; callers guarantee m < M, k < K, n < N. */
const LOADERS: Record<Mode, string> = {
  forward: `
    fn loadA(m: i32, k: i32) -> f32 {
      return xAt(outVoxel(m), tap(k / uniforms.inChannels), k % uniforms.inChannels);
    }
    fn loadB(k: i32, n: i32) -> f32 { return B[k * uniforms.outChannels + n]; }`,
  backpropInput: `
    fn loadA(m: i32, k: i32) -> f32 {
      let v = inVoxel(m);
      let f = tap(k / uniforms.outChannels);
      let od = source(v.y, f.x * uniforms.dilationDepth, uniforms.strideDepth, uniforms.padFront, uniforms.outDepth);
      let oh = source(v.z, f.y * uniforms.dilationHeight, uniforms.strideHeight, uniforms.padTop, uniforms.outHeight);
      let ow = source(v.w, f.z * uniforms.dilationWidth, uniforms.strideWidth, uniforms.padLeft, uniforms.outWidth);
      if (od < 0 || oh < 0 || ow < 0) { return 0.0; }
      return A[outIndex(v.x, od, oh, ow, k % uniforms.outChannels)];
    }
    fn loadB(k: i32, n: i32) -> f32 {
      let t = k / uniforms.outChannels;
      return B[(t * uniforms.inChannels + n) * uniforms.outChannels + k % uniforms.outChannels];
    }`,
  backpropFilter: `
    fn loadA(m: i32, k: i32) -> f32 {
      return xAt(outVoxel(k), tap(m / uniforms.inChannels), m % uniforms.inChannels);
    }
    fn loadB(k: i32, n: i32) -> f32 { return B[k * uniforms.outChannels + n]; }`,
};

/** A tfjs-backend-webgpu program (the fields its runWebGPUProgram reads). */
class TiledConvProgram {
  readonly variableNames = ['A', 'B'];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [2], y: [1], z: [0] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [16, 16, 1];
  readonly uniforms: string;
  private readonly tn: number;

  constructor(private readonly mode: Mode, sizes: { m: number; n: number }, splits: number) {
    this.tn = tileN(sizes.n);
    this.outputShape = [splits, sizes.m, sizes.n];
    this.dispatch = [Math.ceil(sizes.n / this.tn), Math.ceil(sizes.m / TM), splits];
    this.shaderKey = `fedsegTiledConv3d_${mode}_${this.tn}`;
    this.uniforms = [...GEOMETRY_FIELDS, 'M', 'N', 'K', 'kPerSplit', 'kTiles'].map((f) => `${f} : i32,`).join(' ');
  }

  getUserCode(): string {
    const tn = this.tn;
    const rn = tn / 16;
    return `
      ${HELPERS}
      ${LOADERS[this.mode]}
      var<workgroup> As: array<f32, ${TK * TM}>;
      var<workgroup> Bs: array<f32, ${TK * tn}>;
      fn main() {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let tid = ty * 16 + tx;
        let n0 = i32(workgroupId.x) * ${tn};
        let m0 = i32(workgroupId.y) * ${TM};
        let kBegin = i32(workgroupId.z) * uniforms.kPerSplit;
        let kEnd = min(kBegin + uniforms.kPerSplit, uniforms.K);
        var acc: array<f32, ${4 * rn}>;
        for (var t = 0; t < uniforms.kTiles; t++) {
          let k0 = kBegin + t * ${TK};
          for (var i = tid; i < ${TK * TM}; i += 256) {
            let k = k0 + i / ${TM};
            let m = m0 + i % ${TM};
            var a = 0.0;
            if (k < kEnd && m < uniforms.M) { a = loadA(m, k); }
            As[i] = a;
          }
          for (var i = tid; i < ${TK * tn}; i += 256) {
            let k = k0 + i / ${tn};
            let n = n0 + i % ${tn};
            var b = 0.0;
            if (k < kEnd && n < uniforms.N) { b = loadB(k, n); }
            Bs[i] = b;
          }
          workgroupBarrier();
          for (var kk = 0; kk < ${TK}; kk++) {
            for (var r = 0; r < 4; r++) {
              let a = As[kk * ${TM} + ty + r * 16];
              for (var c = 0; c < ${rn}; c++) {
                acc[r * ${rn} + c] = fma(a, Bs[kk * ${tn} + tx + c * 16], acc[r * ${rn} + c]);
              }
            }
          }
          workgroupBarrier();
        }
        for (var r = 0; r < 4; r++) {
          let m = m0 + ty + r * 16;
          for (var c = 0; c < ${rn}; c++) {
            let n = n0 + tx + c * 16;
            if (m < uniforms.M && n < uniforms.N) {
              result[(i32(workgroupId.z) * uniforms.M + m) * uniforms.N + n] = acc[r * ${rn} + c];
            }
          }
        }
      }`;
  }
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: TensorInfo[], dtype: 'float32', uniforms: { type: 'int32'; data: number[] }[]): TensorInfo;
  disposeData(dataId: object): void;
  incRef(dataId: object): void;
}

type ConvInputs = { x: TensorInfo; filter: TensorInfo; dy: TensorInfo };
type Attrs = { strides: number | [number, number, number]; pad: 'same' | 'valid'; dilations?: number | [number, number, number];
  dataFormat?: string; inputShape?: Shape5; filterShape?: Shape5 };

function geometryOf(mode: Mode, inputs: ConvInputs, attrs: Attrs): Conv3DGeometry | undefined {
  if (Object.values(inputs).some((t: TensorInfo) => t.dtype !== 'float32')) return undefined;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NDHWC') return undefined;
  const info = mode === 'forward'
    ? tf.backend_util.computeConv3DInfo(inputs.x.shape as Shape5, inputs.filter.shape as Shape5, attrs.strides, attrs.dilations ?? 1, attrs.pad)
    : mode === 'backpropInput'
      ? tf.backend_util.computeConv3DInfo(attrs.inputShape!, inputs.filter.shape as Shape5, attrs.strides, 1, attrs.pad)
      : tf.backend_util.computeConv3DInfo(inputs.x.shape as Shape5, attrs.filterShape!, attrs.strides, 1, attrs.pad);
  return geometryFromConvInfo(info);
}

function flat(backend: WebGpuBackendLike, t: TensorInfo): TensorInfo {
  backend.incRef(t.dataId); // what the package's Reshape does: a view on the same buffer
  return { dataId: t.dataId, shape: [t.shape.reduce((a, b) => a * b, 1)], dtype: t.dtype };
}

/** Runs one mode; undefined when the call is not one the tiled kernel handles (the stock kernel runs). */
function runTiled(mode: Mode, backend: WebGpuBackendLike, inputs: ConvInputs, attrs: Attrs): TensorInfo | undefined {
  const g = geometryOf(mode, inputs, attrs);
  if (!g) return undefined;
  const sizes = gemmSizes(mode, g);
  const splits = mode === 'backpropFilter' ? Math.ceil(sizes.k / K_PER_SPLIT) : 1;
  const kPerSplit = mode === 'backpropFilter' ? K_PER_SPLIT : Math.ceil(sizes.k / TK) * TK;
  if (Math.ceil(sizes.m / TM) > MAX_DISPATCH || splits > MAX_DISPATCH) return undefined;
  const [a, b] = mode === 'forward' ? [inputs.x, inputs.filter] : mode === 'backpropInput' ? [inputs.dy, inputs.filter] : [inputs.x, inputs.dy];
  const flatInputs = [flat(backend, a), flat(backend, b)];
  const program = new TiledConvProgram(mode, sizes, splits);
  const uniforms = [...GEOMETRY_FIELDS.map((f) => g[f]), sizes.m, sizes.n, sizes.k, kPerSplit, kPerSplit / TK]
    .map((v) => ({ type: 'int32' as const, data: [v] }));
  const partial = backend.runWebGPUProgram(program, flatInputs, 'float32', uniforms);
  flatInputs.forEach((t) => backend.disposeData(t.dataId));
  const outShape = mode === 'forward' ? [g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels]
    : mode === 'backpropInput' ? [g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels]
      : [g.filterDepth, g.filterHeight, g.filterWidth, g.inChannels, g.outChannels];
  if (splits === 1) return { dataId: partial.dataId, shape: outShape, dtype: 'float32' };
  // Split-K partial sums [splits, M, N] -> [M, N] with the package's (rank-2) Sum.
  const sum = tf.getKernel(tf.Sum, 'webgpu')!.kernelFunc as unknown as (args: object) => TensorInfo;
  const rows = { dataId: partial.dataId, shape: [splits, sizes.m * sizes.n], dtype: 'float32' as const };
  const total = sum({ inputs: { x: rows }, backend, attrs: { axis: [0], keepDims: false } });
  backend.disposeData(partial.dataId);
  return { dataId: total.dataId, shape: outShape, dtype: 'float32' };
}

const MODES: [string, Mode][] = [[tf.Conv3D, 'forward'], [tf.Conv3DBackpropInputV2, 'backpropInput'], [tf.Conv3DBackpropFilterV2, 'backpropFilter']];
let installed = false;

/** Registers the tiled kernels on webgpu (idempotent); returns false when FEDSEG_FAST_CONV=0 keeps the stock ones. */
export function installWebGpuConv(backendName: string): boolean {
  if (backendName !== 'webgpu' || process.env.FEDSEG_FAST_CONV === '0') return false;
  if (installed) return true;
  installed = true;
  for (const [name, mode] of MODES) {
    const stock: KernelConfig | undefined = tf.getKernel(name, 'webgpu');
    if (!stock) continue;
    const kernelFunc = (args: { inputs: ConvInputs; backend: WebGpuBackendLike; attrs: Attrs }) =>
      runTiled(mode, args.backend, args.inputs, args.attrs) ?? stock.kernelFunc(args as never);
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ ...stock, kernelFunc: kernelFunc as unknown as KernelFunc });
  }
  return true;
}
