/**
 * Optional native conv3d engine: the N-API addon built from native/ (see native/README.md). Loading is
 * lazy and never throws: when the addon was not built (no compiler at install), was built for another
 * platform, or is switched off with FEDSEG_NATIVE=off, `loadNativeConvEngine` returns undefined and
 * `nativeEngineStatus` says why, so callers fall back to the pure wasm/JS engine.
 *
 * Env: FEDSEG_NATIVE=off disables it; FEDSEG_NATIVE_ADDON=/path/fedseg_native.node loads another build
 * (e.g. from app.asar.unpacked in a packaged desktop app); FEDSEG_NATIVE_THREADS=n sets its thread
 * count (default: online CPUs); FEDSEG_NATIVE_ISA=avx2|portable caps the instruction set it picks.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { errorMessage } from '../errors.js';
import { runRawKernel } from './raw-kernel.js';
import { geometrySizes, type Conv3DGeometry, type ConvEngine } from './conv-engine.js';

/** Protocol version the addon reports in info().version; bumped whenever its call signatures change. */
const ADDON_VERSION = 2;

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
  setThreads(threads: number): void;
  info(): { isa: string; threads: number; version: number };
}

/** Where `node-gyp` puts the addon relative to this file (core/tf -> repo root -> native/build). */
export function defaultAddonPath(): string {
  return fileURLToPath(new URL('../../native/build/Release/fedseg_native.node', import.meta.url));
}

let loaded: { addon?: NativeAddon; status: string } | undefined;

/** Loads the addon once; returns undefined (with the reason in `nativeEngineStatus`) when unusable. */
export function loadNativeAddon(path?: string): NativeAddon | undefined {
  if (loaded && path === undefined) return loaded.addon;
  const result = probeNativeAddon(path ?? process.env.FEDSEG_NATIVE_ADDON ?? defaultAddonPath());
  if (path === undefined) loaded = result;
  return result.addon;
}

/** Tries to load the addon at `path` (uncached); `status` says what happened. Never throws. */
export function probeNativeAddon(path: string): { addon?: NativeAddon; status: string } {
  const switchedOff = (process.env.FEDSEG_NATIVE ?? '').toLowerCase();
  if (['0', 'off', 'false', 'no'].includes(switchedOff)) return { status: 'native conv3d disabled by FEDSEG_NATIVE' };
  if (!existsSync(path)) {
    return { status: `native conv3d not built (${path} missing; run \`node scripts/build-native.js\`)` };
  }
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<NativeAddon>;
    const fns = ['conv3d', 'conv3dBackpropInput', 'conv3dBackpropFilter', 'tile', 'slice', 'setThreads', 'info'] as const;
    if (fns.some((f) => typeof addon[f] !== 'function')) {
      return { status: `native conv3d addon at ${path} lacks the expected functions; rebuild it` };
    }
    const info = (addon as NativeAddon).info();
    if (info.version !== ADDON_VERSION) {
      return { status: `native conv3d addon at ${path} is version ${info.version}, need ${ADDON_VERSION}; rebuild it` };
    }
    return { addon: addon as NativeAddon, status: `native conv3d loaded (${info.isa}, ${info.threads} threads)` };
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

type MovementArgs = { inputs: { x: TensorInfo }; backend: unknown; attrs?: NamedAttrMap };

/**
 * Replaces the backend's Tile and Slice kernels with the addon's memcpy versions. On wasm, TF.js 4.22
 * runs both element by element (Tile ~50 ms per 1 Mi elements); a U-Net step spends seconds in them
 * (nearest upsampling tiles, the concat gradient slices). Copies are exact, so results are unchanged.
 * Non-float32 tensors fall through to the stock kernel. Returns the kernels replaced ([] when the addon
 * is unavailable or the backend is not wasm/cpu). Idempotent.
 */
export function installNativeMovementKernels(backendName: string): string[] {
  const addon = loadNativeAddon();
  if (!addon || (backendName !== 'wasm' && backendName !== 'cpu')) return [];
  const replaced: string[] = [];
  const kernels: Array<[string, (stock: KernelConfig) => KernelFunc]> = [
    [tf.Tile, (stock) => tileKernel(addon, backendName, stock)],
    [tf.Slice, (stock) => sliceKernel(addon, backendName, stock)],
  ];
  for (const [name, make] of kernels) {
    const key = `${backendName}/${name}`;
    let stock = stockMovementKernels.get(key);
    if (!stock) {
      stock = tf.getKernel(name, backendName);
      if (!stock) continue;
      stockMovementKernels.set(key, stock);
    }
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({ kernelName: name, backendName, kernelFunc: make(stock) });
    replaced.push(name);
  }
  return replaced;
}

const stockMovementKernels = new Map<string, KernelConfig>();

/** Puts TF.js's own Tile and Slice back (benchmarks compare with and without). */
export function uninstallNativeMovementKernels(backendName: string): void {
  for (const name of [tf.Tile, tf.Slice]) {
    const stock = stockMovementKernels.get(`${backendName}/${name}`);
    if (!stock) continue;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel(stock);
  }
}

function tileKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return ((args: MovementArgs) => {
    const { x } = args.inputs;
    const reps = (args.attrs as { reps: number[] }).reps;
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = x.shape.length <= 8 && x.shape.length > 0 && reps.every((r) => r >= 1)
      ? runRawKernel(backendName, args.backend, [x], outShape, ([xs], o) => addon.tile(xs, x.shape, reps, o))
      : undefined;
    return out ?? stock.kernelFunc(args as never);
  }) as unknown as KernelFunc;
}

function sliceKernel(addon: NativeAddon, backendName: string, stock: KernelConfig): KernelFunc {
  return ((args: MovementArgs) => {
    const { x } = args.inputs;
    const attrs = args.attrs as { begin: number | number[]; size: number | number[] };
    const [begin, size] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, attrs.begin, attrs.size);
    const out = x.shape.length <= 8 && x.shape.length > 0 && size.every((d) => d >= 0)
      ? runRawKernel(backendName, args.backend, [x], size, ([xs], o) => addon.slice(xs, x.shape, begin, size, o))
      : undefined;
    return out ?? stock.kernelFunc(args as never);
  }) as unknown as KernelFunc;
}
