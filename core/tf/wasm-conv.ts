/**
 * conv3d and its two gradients on the wasm backend as im2col + the backend's own XNNPACK GEMM.
 *
 * TF.js's wasm BatchMatMul takes XNNPACK's fast path only for untransposed operands with batch 1, and
 * caches the packed right-hand operand by tensor id (until that tensor is disposed). So:
 *   forward         y[R,Co]      = cols[R,K]  x W[K,Co]       (W is the filter tensor itself: packed once)
 *   backpropFilter  dW[K,Co]    += colsT[K,R] x dy[R,Co]      (dy rows copied into a fresh tensor per chunk)
 *   backpropInput   dcols[R,K]   = dy[R,Co]   x Wt[Co,K]      (Wt a fresh transposed filter), then col2im
 * Output rows are processed in chunks so the column buffer holds at most COLUMN_BUDGET_FLOATS floats
 * (64 MiB by default); the other scratch is one chunk of the output (chunk rows x Co floats) and Wt (filter size).
 * Every array view into the wasm heap is re-taken after each call that may grow the heap.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { Conv3DGeometry } from './conv-engine.js';
import type { WasmBackendLike } from './raw-kernel.js';
import { col2imAdd, columnsPerRow, im2col, im2colTransposed, outputRows } from './im2col.js';

/** Default upper bound of the im2col buffer: 16 Mi floats = 64 MiB. */
export const COLUMN_BUDGET_FLOATS = 16 * 1024 * 1024;
let columnBudgetFloats = COLUMN_BUDGET_FLOATS;

/** Changes the column budget (tests force many small chunks with it); returns the previous value. */
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

/** C[M,N] = A[M,K] x B[K,N] with all three given as tensor infos whose buffers are at least that large. */
function gemm(backend: WasmBackendLike, a: TensorInfo, b: TensorInfo, out: TensorInfo, m: number, k: number, n: number): void {
  const id = (info: TensorInfo) => backend.dataIdMap.get(info.dataId)!.id;
  matMulOf(backend)(id(a), shapeBytes([1, m, k]), 3, id(b), shapeBytes([1, k, n]), 3, false, false, id(out));
}

/** A fresh float32 view of the first `size` elements (views die when the heap grows). */
function view(backend: WasmBackendLike, info: TensorInfo, size: number): Float32Array {
  return backend.typedArrayFromHeap({ ...info, shape: [size] }) as Float32Array;
}

function chunkRows(g: Conv3DGeometry): number {
  return Math.max(1, Math.min(outputRows(g), Math.floor(columnBudgetFloats / columnsPerRow(g))));
}

function isPointwise(g: Conv3DGeometry): boolean {
  return g.filterDepth * g.filterHeight * g.filterWidth === 1 && g.strideDepth === 1 && g.strideHeight === 1 &&
    g.strideWidth === 1 && g.padFront === 0 && g.padTop === 0 && g.padLeft === 0 &&
    g.outDepth === g.inDepth && g.outHeight === g.inHeight && g.outWidth === g.inWidth;
}

export function wasmConvForward(backend: WasmBackendLike, x: TensorInfo, filter: TensorInfo, g: Conv3DGeometry): TensorInfo {
  const out = backend.makeOutput([g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels], 'float32');
  const rows = outputRows(g);
  const k = columnsPerRow(g);
  const n = g.outChannels;
  if (isPointwise(g)) {
    gemm(backend, x, filter, out, rows, k, n);
    return out;
  }
  const xSize = g.batch * g.inDepth * g.inHeight * g.inWidth * g.inChannels;
  const chunk = chunkRows(g);
  const scratch = new Scratch(backend);
  try {
    const cols = scratch.alloc(chunk * k);
    const partial = chunk < rows ? scratch.alloc(chunk * n) : out;
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const r1 = Math.min(rows, r0 + chunk);
      im2col(view(backend, x, xSize), g, r0, r1, view(backend, cols, (r1 - r0) * k));
      gemm(backend, cols, filter, partial, r1 - r0, k, n);
      if (partial !== out) view(backend, out, rows * n).set(view(backend, partial, (r1 - r0) * n), r0 * n);
    }
  } finally {
    scratch.releaseAll();
  }
  return out;
}

export function wasmConvBackpropFilter(backend: WasmBackendLike, x: TensorInfo, dy: TensorInfo, g: Conv3DGeometry): TensorInfo {
  const k = columnsPerRow(g);
  const n = g.outChannels;
  const rows = outputRows(g);
  const dw = backend.makeOutput([g.filterDepth, g.filterHeight, g.filterWidth, g.inChannels, g.outChannels], 'float32');
  const xSize = g.batch * g.inDepth * g.inHeight * g.inWidth * g.inChannels;
  const chunk = chunkRows(g);
  const scratch = new Scratch(backend);
  const sum = new Float64Array(k * n);
  try {
    const colsT = scratch.alloc(chunk * k);
    const partial = scratch.alloc(k * n);
    for (let r0 = 0; r0 < rows; r0 += chunk) {
      const r1 = Math.min(rows, r0 + chunk);
      const m = r1 - r0;
      // A fresh right-hand tensor per chunk: XNNPACK caches packed weights by tensor id.
      const dyRows = scratch.alloc(m * n);
      view(backend, dyRows, m * n).set(view(backend, dy, rows * n).subarray(r0 * n, r1 * n));
      im2colTransposed(view(backend, x, xSize), g, r0, r1, view(backend, colsT, m * k));
      gemm(backend, colsT, dyRows, partial, k, m, n);
      scratch.release(dyRows);
      const p = view(backend, partial, k * n);
      for (let i = 0; i < p.length; i++) sum[i] += p[i];
    }
    view(backend, dw, k * n).set(sum);
  } finally {
    scratch.releaseAll();
  }
  return dw;
}

export function wasmConvBackpropInput(backend: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, g: Conv3DGeometry): TensorInfo {
  const k = columnsPerRow(g);
  const n = g.outChannels;
  const rows = outputRows(g);
  const dxSize = g.batch * g.inDepth * g.inHeight * g.inWidth * g.inChannels;
  const dx = backend.makeOutput([g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels], 'float32');
  const scratch = new Scratch(backend);
  try {
    const filterT = scratch.alloc(k * n);
    {
      const w = view(backend, filter, k * n);
      const wt = view(backend, filterT, k * n);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) wt[j * k + i] = w[i * n + j];
    }
    if (isPointwise(g)) {
      gemm(backend, dy, filterT, dx, rows, n, k);
      return dx;
    }
    const chunk = chunkRows(g);
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
  } finally {
    scratch.releaseAll();
  }
  return dx;
}
