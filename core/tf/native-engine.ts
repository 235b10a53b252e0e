/**
 * Optional native engine: the N-API addon built from native/ (see native/README.md). It implements the
 * ConvEngine contract (conv3d and both gradients) and, through `installNativeKernels`, faster Tile,
 * Slice, MaxPool3D(+Grad), leading-axes Sum and seeded dropout kernels for the wasm/cpu backends. Loading is lazy and
 * never throws for a missing or unusable addon: when it was not built (no compiler at install), was
 * built for another platform, or is switched off with FEDSEG_NATIVE=off, `loadNativeConvEngine` returns
 * undefined and `nativeEngineStatus` says why, so callers fall back to the pure wasm/JS engine. A
 * malformed FEDSEG_THREADS is a configuration mistake and throws (FedSegError naming it).
 *
 * Env: FEDSEG_NATIVE=off disables it; FEDSEG_NATIVE_ADDON=/path/fedseg_native.node loads another build
 * (e.g. from app.asar.unpacked in a packaged desktop app); FEDSEG_THREADS=n runs its thread pool with n
 * threads (default: every core this process may use); FEDSEG_NATIVE_ISA=avx2|portable caps the
 * instruction set it picks.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { errorMessage, FedSegError } from '../errors.js';
import { packageRoot } from '../runtime/package-root.js';
import { DROPOUT_KERNEL, dropoutConstants } from './dropout.js';
import { runRawKernel } from './raw-kernel.js';
import { geometrySizes, type Conv3DGeometry, type ConvEngine } from './conv-engine.js';

/** Protocol version the addon reports in info().version; bumped whenever its call signatures change. */
const ADDON_VERSION = 5;

type Triple = [number, number, number];
type Shape5 = [number, number, number, number, number];
type ConvCall = (
  a: Float32Array,
  aShape: Shape5,
  b: Float32Array,
  bShape: Shape5,
  out: Float32Array,
  outShape: Shape5,
  strides: Triple,
  pads: Triple,
  dilations: Triple,
) => void;

/** The addon's exports (native/src/addon.c). */
export interface NativeAddon {
  conv3d: ConvCall;
  conv3dBackpropInput: ConvCall;
  conv3dBackpropFilter: ConvCall;
  tile(x: Float32Array, shape: number[], reps: number[], out: Float32Array): void;
  slice(x: Float32Array, shape: number[], begin: number[], size: number[], out: Float32Array): void;
  maxPool3d(x: Float32Array, xShape: Shape5, y: Float32Array, yShape: Shape5, filter: Triple, strides: Triple, pads: Triple): void;
  maxPool3dGrad(
    x: Float32Array, xShape: Shape5, dy: Float32Array, dyShape: Shape5, dx: Float32Array,
    filter: Triple, strides: Triple, pads: Triple,
  ): void;
  sumRows(x: Float32Array, rows: number, cols: number, out: Float32Array): void;
  /** out[i] = hash(seed, i) < threshold ? x[i] * scale : 0 (core/tf/dropout.ts's mask, bit for bit). */
  dropout(x: Float32Array, seed: number, threshold: number, scale: number, out: Float32Array): void;
  setThreads(threads: number): void;
  info(): { isa: string; threads: number; version: number };
}

/** Where `node-gyp` puts the addon: native/build under the package root (source, dist/ and bundles alike). */
export function defaultAddonPath(): string {
  return join(packageRoot(), 'native', 'build', 'Release', 'fedseg_native.node');
}

/** Most threads the addon's pool runs (POOL_MAX_THREADS in native/src/thread_pool.h). */
export const MAX_NATIVE_THREADS = 256;

const ThreadsSchema = z.string().trim().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.int().min(1).max(MAX_NATIVE_THREADS));

/**
 * Threads for the native pool: FEDSEG_THREADS when set (1..256; more than the cores only oversubscribes
 * them), else every core this process may use (os.availableParallelism honours CPU affinity, so a site
 * started under `taskset` or a container's cpuset gets its share). Results do not depend on it.
 */
export function nativeThreadCount(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FEDSEG_THREADS;
  if (raw === undefined || raw.trim() === '') return Math.min(availableParallelism(), MAX_NATIVE_THREADS);
  const parsed = ThreadsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new FedSegError(`FEDSEG_THREADS must be a whole number from 1 to ${MAX_NATIVE_THREADS}, got "${raw}"`, { field: 'FEDSEG_THREADS' });
  }
  return parsed.data;
}

let loaded: { addon?: NativeAddon; status: string } | undefined;

/**
 * Loads the addon once, with its pool sized by `nativeThreadCount`; returns undefined (with the reason
 * in `nativeEngineStatus`) when unusable. Throws only for a malformed FEDSEG_THREADS.
 */
export function loadNativeAddon(path?: string): NativeAddon | undefined {
  if (loaded && path === undefined) return loaded.addon;
  const threads = nativeThreadCount();
  const result = probeNativeAddon(path ?? process.env.FEDSEG_NATIVE_ADDON ?? defaultAddonPath(), threads);
  if (path === undefined) loaded = result;
  return result.addon;
}

/**
 * Tries to load the addon at `path` (uncached) and, when given, sets its thread count; `status` says
 * what happened. Never throws.
 */
export function probeNativeAddon(path: string, threads?: number): { addon?: NativeAddon; status: string } {
  const switchedOff = (process.env.FEDSEG_NATIVE ?? '').toLowerCase();
  if (['0', 'off', 'false', 'no'].includes(switchedOff)) return { status: 'native conv3d disabled by FEDSEG_NATIVE' };
  if (!existsSync(path)) {
    return { status: `native conv3d not built (${path} missing; run \`node scripts/build-native.js\`)` };
  }
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<NativeAddon>;
    const fns = ['conv3d', 'conv3dBackpropInput', 'conv3dBackpropFilter', 'tile', 'slice', 'maxPool3d', 'maxPool3dGrad', 'sumRows',
      'dropout', 'setThreads', 'info'] as const;
    if (fns.some((f) => typeof addon[f] !== 'function')) {
      return { status: `native conv3d addon at ${path} lacks the expected functions; rebuild it` };
    }
    const native = addon as NativeAddon;
    const { version } = native.info();
    if (version !== ADDON_VERSION) return { status: `native conv3d addon at ${path} is version ${version}, need ${ADDON_VERSION}; rebuild it` };
    if (threads !== undefined) native.setThreads(threads);
    const info = native.info();
    return { addon: native, status: `native conv3d loaded (${info.isa}, ${info.threads} threads)` };
  } catch (err) {
    return { status: `native conv3d addon at ${path} failed to load: ${errorMessage(err)}` };
  }
}

/** Why the native engine is or is not available, for logs and `describeBackend()`. */
export function nativeEngineStatus(): string {
  loadNativeAddon();
  return loaded?.status ?? 'native conv3d not loaded';
}

const INT32_MAX = 2 ** 31 - 1;

function shapes(g: Conv3DGeometry): { x: Shape5; y: Shape5; filter: Shape5; strides: Triple; pads: Triple; dil: Triple } {
  return {
    x: [g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels],
    y: [g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels],
    filter: [g.filterDepth, g.filterHeight, g.filterWidth, g.inChannels, g.outChannels],
    strides: [g.strideDepth, g.strideHeight, g.strideWidth],
    pads: [g.padFront, g.padTop, g.padLeft],
    dil: [g.dilationDepth, g.dilationHeight, g.dilationWidth],
  };
}

/** Wraps a loaded addon as a ConvEngine (exported for tests that load a specific build). */
export function engineFromAddon(addon: NativeAddon): ConvEngine {
  const info = addon.info();
  return {
    name: `native (${info.threads} threads, ${info.isa})`,
    supports(g: Conv3DGeometry): boolean {
      const s = shapes(g);
      const positive = [...s.x, ...s.y, ...s.filter, ...s.strides, ...s.dil];
      if (!positive.every((v) => Number.isInteger(v) && v >= 1 && v <= INT32_MAX)) return false;
      if (!s.pads.every((v) => Number.isInteger(v) && Math.abs(v) < 2 ** 30)) return false;
      const sizes = geometrySizes(g);
      return Math.max(sizes.x, sizes.y, sizes.filter) <= Number.MAX_SAFE_INTEGER;
    },
    forward(x, filter, g, out) {
      const s = shapes(g);
      addon.conv3d(x, s.x, filter, s.filter, out, s.y, s.strides, s.pads, s.dil);
    },
    backpropInput(dy, filter, g, dx) {
      const s = shapes(g);
      addon.conv3dBackpropInput(dy, s.y, filter, s.filter, dx, s.x, s.strides, s.pads, s.dil);
    },
    backpropFilter(x, dy, g, dw) {
      const s = shapes(g);
      addon.conv3dBackpropFilter(x, s.x, dy, s.y, dw, s.filter, s.strides, s.pads, s.dil);
    },
  };
}

/** The native engine, or undefined when the addon is unavailable (see `nativeEngineStatus`). */
export function loadNativeConvEngine(): ConvEngine | undefined {
  const addon = loadNativeAddon();
  return addon ? engineFromAddon(addon) : undefined;
}

type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: NamedAttrMap };

const stockKernels = new Map<string, KernelConfig>();

/**
 * Replaces the backend's Tile, Slice, MaxPool3D, MaxPool3DGrad and (for sums over leading axes, i.e.
 * bias gradients) Sum kernels with the addon's, and FedSeg's seeded dropout (core/tf/dropout.ts) where
 * it is registered. TF.js 4.22's wasm backend runs Tile and rank >= 4 Slice
 * element by element (the concat gradient's slices alone took ~2 s of a 64^3 U-Net step), its 3D
 * pooling single-threaded, and transposes before summing over leading axes; the native ones are memcpy
 * runs, threaded loops and one pass. The dropout mask's hash was a single-threaded JavaScript loop (16 %
 * of the 128^3 step's kernel time). Tile/Slice/pooling/dropout are bit-identical to the kernels they
 * replace, Sum (double accumulation) equal to float32 rounding (test/native/extra-kernels.test.ts).
 * Non-float32 or NCDHW inputs fall through to the stock kernel. Returns the kernels replaced ([] when
 * the addon is unavailable or the backend is not wasm/cpu). Idempotent.
 */
export function installNativeKernels(backendName: string): string[] {
  const addon = loadNativeAddon();
  if (!addon || (backendName !== 'wasm' && backendName !== 'cpu')) return [];
  const replaced: string[] = [];
  const makers: Array<[string, (stock: KernelConfig) => KernelFunc]> = [
    [tf.Tile, (stock) => tileKernel(addon, backendName, stock)],
    [tf.Slice, (stock) => sliceKernel(addon, backendName, stock)],
    [tf.MaxPool3D, (stock) => maxPoolKernel(addon, backendName, stock)],
    [tf.MaxPool3DGrad, (stock) => maxPoolGradKernel(addon, backendName, stock)],
    [tf.Sum, (stock) => sumKernel(addon, backendName, stock)],
    [DROPOUT_KERNEL, (stock) => dropoutKernel(addon, backendName, stock)],
  ];
  for (const [name, make] of makers) {
    const key = `${backendName}/${name}`;
    let stock = stockKernels.get(key);
    if (!stock) {
      stock = tf.getKernel(name, backendName);
      if (!stock) continue;
      stockKernels.set(key, stock);
    }
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc: make(stock) });
    replaced.push(name);
  }
  return replaced;
}

/** Puts TF.js's own kernels back (tests and benchmarks compare with and without). */
export function uninstallNativeKernels(backendName: string): void {
  for (const name of [tf.Tile, tf.Slice, tf.MaxPool3D, tf.MaxPool3DGrad, tf.Sum, DROPOUT_KERNEL]) {
    const stock = stockKernels.get(`${backendName}/${name}`);
    if (!stock) continue;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel(stock);
  }
}

function withFallback(stock: KernelConfig, run: (args: KernelArgs) => TensorInfo | undefined): KernelFunc {
  return ((args: KernelArgs) => run(args) ?? stock.kernelFunc(args as never)) as unknown as KernelFunc;
}

function tileKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return withFallback(stock, ({ inputs: { x }, backend, attrs }) => {
    const reps = (attrs as { reps: number[] }).reps;
    if (x.shape.length < 1 || x.shape.length > 8 || !reps.every((r) => r >= 1)) return undefined;
    const outShape = x.shape.map((d, i) => d * reps[i]);
    return runRawKernel(backendName, backend, [x], outShape, ([xs], o) => addon.tile(xs, x.shape, reps, o));
  });
}

function sliceKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return withFallback(stock, ({ inputs: { x }, backend, attrs }) => {
    const a = attrs as { begin: number | number[]; size: number | number[] };
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, a.begin, a.size);
    if (x.shape.length < 1 || x.shape.length > 8 || !size.every((d) => d >= 0)) return undefined;
    return runRawKernel(backendName, backend, [x], size, ([xs], o) => addon.slice(xs, x.shape, begin, size, o));
  });
}

type PoolAttrs = {
  filterSize: number | Triple;
  strides: number | Triple;
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dataFormat?: 'NDHWC' | 'NCDHW';
};

/** TF.js's own pooling geometry; undefined for layouts/filters the native kernels leave to the stock one. */
function poolInfo(xShape: number[], attrs: NamedAttrMap | undefined): tf.backend_util.Conv3DInfo | undefined {
  const a = attrs as PoolAttrs;
  if (xShape.length !== 5 || (a.dataFormat !== undefined && a.dataFormat !== 'NDHWC')) return undefined;
  const info = tf.backend_util.computePool3DInfo(xShape as Shape5, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  // TF.js records window positions with filterHeight as the row stride, so its gradient is only well
  // defined (and only reproduced here) for square windows in height/width.
  return info.filterHeight === info.filterWidth ? info : undefined;
}

function poolArgs(info: tf.backend_util.Conv3DInfo): [Triple, Triple, Triple] {
  return [
    [info.filterDepth, info.filterHeight, info.filterWidth],
    [info.strideDepth, info.strideHeight, info.strideWidth],
    [info.padInfo.front, info.padInfo.top, info.padInfo.left],
  ];
}

function maxPoolKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return withFallback(stock, ({ inputs: { x }, backend, attrs }) => {
    const info = poolInfo(x.shape, attrs);
    if (!info) return undefined;
    const yShape = info.outShape as Shape5;
    return runRawKernel(backendName, backend, [x], yShape, ([xs], y) =>
      addon.maxPool3d(xs, x.shape as Shape5, y, yShape, ...poolArgs(info)));
  });
}

function maxPoolGradKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return withFallback(stock, ({ inputs: { dy, input }, backend, attrs }) => {
    const info = poolInfo(input.shape, attrs);
    if (!info) return undefined;
    const xShape = input.shape as Shape5;
    return runRawKernel(backendName, backend, [input, dy], xShape, ([xs, dys], dx) =>
      addon.maxPool3dGrad(xs, xShape, dys, dy.shape as Shape5, dx, ...poolArgs(info)));
  });
}

/** Largest trailing block Sum handles natively (the double partials are chunks x cols). */
const SUM_MAX_COLS = 65536;

function sumKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return withFallback(stock, ({ inputs: { x }, backend, attrs }) => {
    const a = attrs as { axis: number | number[]; keepDims?: boolean };
    const axes = [...tf.util.parseAxisParam(a.axis, x.shape)].sort((p, q) => p - q);
    const lead = axes.length;
    if (lead === 0 || !axes.every((axis, i) => axis === i)) return undefined;
    const rows = x.shape.slice(0, lead).reduce((p, q) => p * q, 1);
    const cols = x.shape.slice(lead).reduce((p, q) => p * q, 1);
    if (rows < 1 || cols < 1 || cols > SUM_MAX_COLS || rows > 2 ** 30) return undefined;
    const outShape = a.keepDims ? x.shape.map((d, i) => (i < lead ? 1 : d)) : x.shape.slice(lead);
    return runRawKernel(backendName, backend, [x], outShape, ([xs], out) => addon.sumRows(xs, rows, cols, out));
  });
}

function dropoutKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return withFallback(stock, ({ inputs: { x }, backend, attrs }) => {
    const { rate, seed } = attrs as { rate: number; seed: number };
    const { threshold, scale } = dropoutConstants(rate);
    return runRawKernel(backendName, backend, [x], [...x.shape], ([xs], out) => addon.dropout(xs, seed, threshold, scale, out));
  });
}
