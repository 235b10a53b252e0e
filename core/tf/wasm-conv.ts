/**
 * conv3d and its two gradients on the wasm backend, built from the backend's own XNNPACK operators
 * (TF.js 4.22's wasm Conv3D kernels are naive loops, and its two gradient kernels compute wrong values).
 *
 *  forward          y[:, od] = sum over depth taps fd of conv2d(x[:, od*sD - padFront + fd*dD], W[fd]):
 *                   each tap is one XNNPACK Conv2D over the (batch x output-depth) planes it needs
 *                   (gathered by whole-plane copies, zero planes in the padding), summed in place.
 *  backpropInput    stride 1: the same plane convolution of dy with the filter rotated 180 degrees and
 *                   in/out channels swapped (full padding). Other strides: dcols = dy x W^T (XNNPACK
 *                   GEMM) scattered back with col2im.
 *  backpropFilter   dW [K,Co] = sum over row chunks of colsT [K,R] x dy [R,Co] (XNNPACK GEMM), the
 *                   transposed columns written tap by tap. (Contracting over R as the GEMM's inner
 *                   dimension keeps XNNPACK at matMul speed; per-tap GEMMs with 16 x 16 outputs ran ~7x
 *                   slower.)
 * TF.js's wasm BatchMatMul takes XNNPACK's fast path only for untransposed operands with batch 1 and
 * caches the packed right-hand operand by tensor id until that tensor is disposed, so every right-hand
 * operand here is either the filter itself or a fresh tensor disposed right after use.
 *
 * Memory bound: every gathered-plane or column buffer is processed in chunks of at most
 * COLUMN_BUDGET_FLOATS floats (64 MiB); besides the output, the other scratch is one chunk of partial
 * output (that bound scaled by Co/Ci), a channel-major copy of the chunk's input planes (plus the
 * filter's depth halo) for backprop-filter, and filter-sized copies.
 * Every array view into the wasm heap is re-taken after each call that may grow the heap.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { Conv3DGeometry } from './conv-engine.js';
import { col2imAdd, columnsPerRow, outputRows } from './im2col.js';
import type { WasmBackendLike } from './raw-kernel.js';

/** Default upper bound of any im2col/gathered buffer: 16 Mi floats = 64 MiB. */
export const COLUMN_BUDGET_FLOATS = 16 * 1024 * 1024;
let columnBudgetFloats = COLUMN_BUDGET_FLOATS;

/** Changes the buffer budget (tests force many small chunks with it); returns the previous value. */
export function setColumnBudget(floats: number): number {
  const previous = columnBudgetFloats;
  columnBudgetFloats = Math.max(1, Math.floor(floats));
  return previous;
}

type MatMul = (aId: number, aShape: Uint8Array, aRank: number, bId: number, bShape: Uint8Array, bRank: number,
  transposeA: boolean, transposeB: boolean, outId: number) => void;

const matMuls = new WeakMap<object, MatMul>();

function matMulOf(backend: WasmBackendLike): MatMul {
  let fn = matMuls.get(backend);
  if (!fn) {
    fn = backend.wasm.cwrap('BatchMatMul', null,
      ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']) as MatMul;
    matMuls.set(backend, fn);
  }
  return fn;
}

class Scratch {
  private readonly owned: TensorInfo[] = [];
  constructor(private readonly backend: WasmBackendLike) {}
  alloc(size: number): TensorInfo {
    const info = this.backend.makeOutput([size], 'float32');
    this.owned.push(info);
    return info;
  }
  /** Takes ownership of a tensor another kernel returned. */
  adopt(info: TensorInfo): TensorInfo {
    this.owned.push(info);
    return info;
  }
  release(info: TensorInfo): void {
    const i = this.owned.indexOf(info);
    if (i >= 0) this.owned.splice(i, 1);
    this.backend.disposeData(info.dataId, true);
  }
  releaseAll(): void {
    for (const info of this.owned.splice(0)) this.backend.disposeData(info.dataId, true);
  }
}

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/** C[M,N] = A[M,K] x B[K,N], each given as a tensor whose buffer holds at least that many floats. */
function gemm(backend: WasmBackendLike, a: TensorInfo, b: TensorInfo, out: TensorInfo, m: number, k: number, n: number): void {
  const id = (info: TensorInfo) => backend.dataIdMap.get(info.dataId)!.id;
  matMulOf(backend)(id(a), shapeBytes([1, m, k]), 3, id(b), shapeBytes([1, k, n]), 3, false, false, id(out));
}

/** A fresh float32 view of the first `size` elements (views die when the heap grows). */
function view(backend: WasmBackendLike, info: TensorInfo, size: number): Float32Array {
  return backend.typedArrayFromHeap({ ...info, shape: [size] }) as Float32Array;
}

function isPointwise(g: Conv3DGeometry): boolean {
  return g.filterDepth * g.filterHeight * g.filterWidth === 1 && g.strideDepth === 1 && g.strideHeight === 1 &&
    g.strideWidth === 1 && g.padFront === 0 && g.padTop === 0 && g.padLeft === 0 &&
    g.outDepth === g.inDepth && g.outHeight === g.inHeight && g.outWidth === g.inWidth;
}

const xSizeOf = (g: Conv3DGeometry) => g.batch * g.inDepth * g.inHeight * g.inWidth * g.inChannels;
const ySizeOf = (g: Conv3DGeometry) => g.batch * g.outDepth * g.outHeight * g.outWidth * g.outChannels;

/**
 * y = conv3d(x, filter) for geometry g, as one XNNPACK Conv2D per depth tap over gathered planes.
 * `filter` is any float32 tensor holding the DHWIO filter of g; returns a new [n, oD, oH, oW, Co] tensor.
 */
function convByPlanes(backend: WasmBackendLike, x: TensorInfo, filter: TensorInfo, g: Conv3DGeometry): TensorInfo {
  const conv2d = tf.getKernel(tf.Conv2D, 'wasm')!.kernelFunc;
  const out = backend.makeOutput([g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels], 'float32');
  const inPlane = g.inHeight * g.inWidth * g.inChannels;
  const outPlane = g.outHeight * g.outWidth * g.outChannels;
  const tapSize = g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
  const planes = g.batch * g.outDepth;
  const chunk = Math.max(1, Math.min(planes, Math.floor(columnBudgetFloats / inPlane)));
  // Explicit H/W padding reproduces the 3D 'same'/'valid' geometry exactly.
  const padBottom = Math.max(0, (g.outHeight - 1) * g.strideHeight + (g.filterHeight - 1) * g.dilationHeight + 1 - g.inHeight - g.padTop);
  const padRight = Math.max(0, (g.outWidth - 1) * g.strideWidth + (g.filterWidth - 1) * g.dilationWidth + 1 - g.inWidth - g.padLeft);
  const attrs = {
    strides: [g.strideHeight, g.strideWidth], dilations: [g.dilationHeight, g.dilationWidth], dataFormat: 'NHWC',
    pad: [[0, 0], [g.padTop, padBottom], [g.padLeft, padRight], [0, 0]], dimRoundingMode: undefined,
  };
  const scratch = new Scratch(backend);
  try {
    const taps = Array.from({ length: g.filterDepth }, (_, fd) => {
      const t = scratch.alloc(tapSize);
      view(backend, t, tapSize).set(view(backend, filter, g.filterDepth * tapSize).subarray(fd * tapSize, (fd + 1) * tapSize));
      return { ...t, shape: [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels] };
    });
    const gathered = scratch.alloc(chunk * inPlane);
    const xSize = xSizeOf(g);
    const ySize = ySizeOf(g);
    for (let p0 = 0; p0 < planes; p0 += chunk) {
      const p1 = Math.min(planes, p0 + chunk);
      for (let fd = 0; fd < g.filterDepth; fd++) {
        const xs = view(backend, x, xSize);
        const buf = view(backend, gathered, (p1 - p0) * inPlane);
        let any = false;
        for (let p = p0; p < p1; p++) {
          const b = Math.floor(p / g.outDepth);
          const id = (p - b * g.outDepth) * g.strideDepth - g.padFront + fd * g.dilationDepth;
          const dst = (p - p0) * inPlane;
          if (id < 0 || id >= g.inDepth) buf.fill(0, dst, dst + inPlane);
          else {
            const src = (b * g.inDepth + id) * inPlane;
            buf.set(xs.subarray(src, src + inPlane), dst);
            any = true;
          }
        }
        if (!any && fd > 0) continue; // an all-padding tap adds nothing (tap 0 still initialises the output)
        const partial = scratch.adopt(conv2d({
          inputs: { x: { ...gathered, shape: [p1 - p0, g.inHeight, g.inWidth, g.inChannels] }, filter: taps[fd] },
          backend: backend as never, attrs: attrs as never,
        }) as TensorInfo);
        const y = view(backend, out, ySize);
        const part = view(backend, partial, (p1 - p0) * outPlane);
        const base = p0 * outPlane;
        if (fd === 0) y.set(part, base);
        else for (let i = 0; i < part.length; i++) y[base + i] += part[i];
        scratch.release(partial);
      }
    }
  } finally {
    scratch.releaseAll();
  }
  return out;
}

export function wasmConvForward(backend: WasmBackendLike, x: TensorInfo, filter: TensorInfo, g: Conv3DGeometry): TensorInfo {
  if (isPointwise(g)) {
    const out = backend.makeOutput([g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels], 'float32');
    gemm(backend, x, filter, out, outputRows(g), g.inChannels, g.outChannels);
    return out;
  }
  return convByPlanes(backend, x, filter, g);
}

function isUnitStride(g: Conv3DGeometry): boolean {
  return g.strideDepth === 1 && g.strideHeight === 1 && g.strideWidth === 1 &&
    g.dilationDepth === 1 && g.dilationHeight === 1 && g.dilationWidth === 1;
}

export function wasmConvBackpropInput(backend: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, g: Conv3DGeometry): TensorInfo {
  const k = columnsPerRow(g);
  const n = g.outChannels;
  const scratch = new Scratch(backend);
  try {
    if (isUnitStride(g)) {
      // dx = conv(dy, W rotated 180 degrees with Ci/Co swapped) with "full" padding.
      const rotated = scratch.alloc(k * n);
      const w = view(backend, filter, k * n);
      const r = view(backend, rotated, k * n);
      const taps = g.filterDepth * g.filterHeight * g.filterWidth;
      for (let t = 0; t < taps; t++) {
        const src = (taps - 1 - t) * g.inChannels * n;
        const dst = t * n * g.inChannels;
        for (let ci = 0; ci < g.inChannels; ci++) for (let co = 0; co < n; co++) r[dst + co * g.inChannels + ci] = w[src + ci * n + co];
      }
      return convByPlanes(backend, dy, rotated, {
        ...g,
        inDepth: g.outDepth, inHeight: g.outHeight, inWidth: g.outWidth, inChannels: n,
        outDepth: g.inDepth, outHeight: g.inHeight, outWidth: g.inWidth, outChannels: g.inChannels,
        padFront: g.filterDepth - 1 - g.padFront, padTop: g.filterHeight - 1 - g.padTop, padLeft: g.filterWidth - 1 - g.padLeft,
      });
    }
    const rows = outputRows(g);
    const dxSize = xSizeOf(g);
    const dx = backend.makeOutput([g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels], 'float32');
    const filterT = scratch.alloc(k * n);
    {
      const w = view(backend, filter, k * n);
      const wt = view(backend, filterT, k * n);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) wt[j * k + i] = w[i * n + j];
    }
    const chunk = Math.max(1, Math.min(rows, Math.floor(columnBudgetFloats / k)));
    const dcols = scratch.alloc(chunk * k);
    const dyRows = chunk < rows ? scratch.alloc(chunk * n) : dy;
    view(backend, dx, dxSize).fill(0);
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const r1 = Math.min(rows, r0 + chunk);
      const m = r1 - r0;
      if (dyRows !== dy) view(backend, dyRows, m * n).set(view(backend, dy, rows * n).subarray(r0 * n, r1 * n));
      gemm(backend, dyRows, filterT, dcols, m, n, k);
      col2imAdd(view(backend, dcols, m * k), g, r0, r1, view(backend, dx, dxSize));
    }
    return dx;
  } finally {
    scratch.releaseAll();
  }
}

/**
 * Transposed columns of rows [r0, r1) for one filter tap: colsT[(tapColumn + ci) * m + (r - r0)] = x at
 * output row r's input voxel for tap (fd, fh, fw), 0 in padding (m = r1 - r0).
 */
function tapColumnsTransposed(x: Float32Array, g: Conv3DGeometry, fd: number, fh: number, fw: number, r0: number, r1: number,
  tapColumn: number, colsT: Float32Array): void {
  const c = g.inChannels;
  const m = r1 - r0;
  let r = r0;
  while (r < r1) {
    // One output row (b, od, oh): ow from r's position to the row end or r1.
    const ow0 = r % g.outWidth;
    const rowIndex = (r - ow0) / g.outWidth;
    const oh = rowIndex % g.outHeight;
    const bd = (rowIndex - oh) / g.outHeight;
    const od = bd % g.outDepth;
    const b = (bd - od) / g.outDepth;
    const count = Math.min(g.outWidth - ow0, r1 - r);
    const id = od * g.strideDepth - g.padFront + fd * g.dilationDepth;
    const ih = oh * g.strideHeight - g.padTop + fh * g.dilationHeight;
    const column0 = r - r0;
    if (id < 0 || id >= g.inDepth || ih < 0 || ih >= g.inHeight) {
      for (let ci = 0; ci < c; ci++) colsT.fill(0, (tapColumn + ci) * m + column0, (tapColumn + ci) * m + column0 + count);
    } else {
      // Input column of output column ow0 + i is iw0 + i*sW; [lo, hi) are the i inside the volume.
      const iw0 = ow0 * g.strideWidth - g.padLeft + fw * g.dilationWidth;
      const lo = Math.min(count, Math.max(0, Math.ceil(-iw0 / g.strideWidth)));
      const hi = Math.max(lo, Math.min(count, Math.ceil((g.inWidth - iw0) / g.strideWidth)));
      const step = g.strideWidth * c;
      const rowBase = (((b * g.inDepth + id) * g.inHeight + ih) * g.inWidth + iw0) * c;
      for (let ci = 0; ci < c; ci++) {
        const dst = (tapColumn + ci) * m + column0;
        if (lo > 0) colsT.fill(0, dst, dst + lo);
        for (let i = lo, src = rowBase + lo * step + ci; i < hi; i++, src += step) colsT[dst + i] = x[src];
        if (hi < count) colsT.fill(0, dst + hi, dst + count);
      }
    }
    r += count;
  }
}

/** Unit stride and dilation with output size = input size ('same' padding): the U-Net's convolutions. */
function isSameUnit(g: Conv3DGeometry): boolean {
  return isUnitStride(g) && g.outDepth === g.inDepth && g.outHeight === g.inHeight && g.outWidth === g.inWidth;
}

/**
 * Transposed columns for same-size unit-stride convolutions, rows = the voxels of planes [z0, z1) of
 * batch item b: the column of tap (dz, dy, dx) and channel ci is channel ci of x shifted by
 * dz*H*W + dy*W + dx, so each is one contiguous copy from a channel-major copy of x (with the depth
 * halo), followed by zeroing the entries whose neighbour lies outside the volume.
 */
function sameUnitColumnsTransposed(x: Float32Array, g: Conv3DGeometry, b: number, z0: number, z1: number, colsT: Float32Array): void {
  const c = g.inChannels;
  const [D, H, W] = [g.inDepth, g.inHeight, g.inWidth];
  const hw = H * W;
  const m = (z1 - z0) * hw;
  const za = Math.max(0, z0 - g.padFront);
  const zb = Math.min(D, z1 + g.filterDepth - 1 - g.padFront);
  const span = (zb - za) * hw;
  const channelMajor = new Float32Array(c * span);
  const base = (b * D + za) * hw * c;
  for (let v = 0; v < span; v++) for (let ci = 0; ci < c; ci++) channelMajor[ci * span + v] = x[base + v * c + ci];
  let tap = 0;
  for (let fd = 0; fd < g.filterDepth; fd++) {
    const dz = fd - g.padFront;
    for (let fh = 0; fh < g.filterHeight; fh++) {
      const dy = fh - g.padTop;
      for (let fw = 0; fw < g.filterWidth; fw++, tap++) {
        const dx = fw - g.padLeft;
        // Output voxel v (relative to z0) reads source voxel v + shift (relative to za).
        const shift = (z0 - za + dz) * hw + dy * W + dx;
        const lo = Math.min(m, Math.max(0, -shift));
        const hi = Math.max(lo, Math.min(m, span - shift));
        for (let ci = 0; ci < c; ci++) {
          const row = (tap * c + ci) * m;
          if (lo > 0) colsT.fill(0, row, row + lo);
          colsT.set(channelMajor.subarray(ci * span + lo + shift, ci * span + hi + shift), row + lo);
          if (hi < m) colsT.fill(0, row + hi, row + m);
          for (let z = z0; z < z1; z++) {
            const plane = row + (z - z0) * hw;
            if (z + dz < 0 || z + dz >= D) {
              colsT.fill(0, plane, plane + hw);
              continue;
            }
            // Rows whose neighbour row is outside, then columns whose neighbour column is (row wrap-around).
            if (dy < 0) colsT.fill(0, plane, plane - dy * W);
            else if (dy > 0) colsT.fill(0, plane + (H - dy) * W, plane + hw);
            if (dx !== 0) {
              const first = dx < 0 ? 0 : W - dx;
              const count = Math.abs(dx);
              for (let y = 0; y < H; y++) colsT.fill(0, plane + y * W + first, plane + y * W + first + count);
            }
          }
        }
      }
    }
  }
}

export function wasmConvBackpropFilter(backend: WasmBackendLike, x: TensorInfo, dy: TensorInfo, g: Conv3DGeometry): TensorInfo {
  const k = columnsPerRow(g);
  const co = g.outChannels;
  const rows = outputRows(g);
  const dw = backend.makeOutput([g.filterDepth, g.filterHeight, g.filterWidth, g.inChannels, co], 'float32');
  const sum = new Float64Array(k * co);
  const scratch = new Scratch(backend);
  // Row chunks: whole output planes of one batch item on the shifted-copy path, any rows otherwise.
  const planeRows = g.outHeight * g.outWidth;
  const sameUnit = isSameUnit(g);
  const chunks: [number, number][] = [];
  if (sameUnit) {
    const planes = Math.max(1, Math.min(g.outDepth, Math.floor(columnBudgetFloats / (k * planeRows))));
    for (let b = 0; b < g.batch; b++)
      for (let z = 0; z < g.outDepth; z += planes) chunks.push([(b * g.outDepth + z) * planeRows, (b * g.outDepth + Math.min(g.outDepth, z + planes)) * planeRows]);
  } else {
    const chunk = Math.max(1, Math.min(rows, Math.floor(columnBudgetFloats / k)));
    for (let r0 = 0; r0 < rows; r0 += chunk) chunks.push([r0, Math.min(rows, r0 + chunk)]);
  }
  try {
    const colsT = scratch.alloc(Math.max(...chunks.map(([r0, r1]) => r1 - r0)) * k);
    const partial = scratch.alloc(k * co);
    const xSize = xSizeOf(g);
    for (const [r0, r1] of chunks) {
      const m = r1 - r0;
      if (sameUnit) {
        const plane0 = r0 / planeRows;
        const b = Math.floor(plane0 / g.outDepth);
        const z0 = plane0 - b * g.outDepth;
        sameUnitColumnsTransposed(view(backend, x, xSize), g, b, z0, z0 + m / planeRows, view(backend, colsT, m * k));
      } else {
        let tap = 0;
        for (let fd = 0; fd < g.filterDepth; fd++)
          for (let fh = 0; fh < g.filterHeight; fh++)
            for (let fw = 0; fw < g.filterWidth; fw++, tap++)
              tapColumnsTransposed(view(backend, x, xSize), g, fd, fh, fw, r0, r1, tap * g.inChannels, view(backend, colsT, m * k));
      }
      // A fresh right-hand tensor per chunk: XNNPACK caches packed weights by tensor id.
      const dyRows = scratch.alloc(m * co);
      view(backend, dyRows, m * co).set(view(backend, dy, rows * co).subarray(r0 * co, r1 * co));
      gemm(backend, colsT, dyRows, partial, k, m, co);
      scratch.release(dyRows);
      const p = view(backend, partial, k * co);
      for (let i = 0; i < p.length; i++) sum[i] += p[i];
    }
    view(backend, dw, sum.length).set(sum);
  } finally {
    scratch.releaseAll();
  }
  return dw;
}
