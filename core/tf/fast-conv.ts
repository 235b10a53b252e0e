/**
 * Registers FedSeg's conv3d kernels (Conv3D, Conv3DBackpropInputV2, Conv3DBackpropFilterV2) on the
 * wasm and cpu backends in place of TF.js 4.22's naive loops. Engine per backend, best first:
 *   native  - core/tf/native-engine.ts, when its addon loads (threads, SIMD);
 *   xnnpack - wasm only: the wasm backend's own XNNPACK Conv2D and GEMM (core/tf/wasm-conv.ts);
 *   js      - direct loops in JavaScript (core/tf/js-conv-engine.ts).
 * FEDSEG_FAST_CONV=0 keeps the stock kernels, except the wasm backend's stock gradients: in 4.22 its
 * Conv3DBackpropInputV2 is wrong for every geometry and its Conv3DBackpropFilterV2 for strides > 1
 * (test/tf/conv-kernels.test.ts shows both), so they are always replaced, by the js reference when
 * fast kernels are off. Geometries an engine does not support, non-float32 or
 * NCDHW data fall through to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { errorMessage, FedSegError } from '../errors.js';
import { geometryFromConvInfo, type Conv3DGeometry, type ConvEngine, type NativeEngineModule } from './conv-engine.js';
import { jsConvEngine } from './js-conv-engine.js';
import { runRawKernel, type WasmBackendLike } from './raw-kernel.js';
import { wasmConvBackpropFilter, wasmConvBackpropInput, wasmConvForward } from './wasm-conv.js';

export type ConvKernelMode = 'stock' | 'js' | 'xnnpack' | 'native';

export interface FastConvStatus {
  /** True when any FedSeg fast kernel (not just the wasm correctness fix) is active. */
  enabled: boolean;
  /** Engine description, e.g. "native (2 threads, avx2)" or "wasm-xnnpack (...)". */
  engine: string;
  mode: ConvKernelMode;
}

const KERNELS = [tf.Conv3D, tf.Conv3DBackpropInputV2, tf.Conv3DBackpropFilterV2] as const;
type ConvKernelName = (typeof KERNELS)[number];

const stockConfigs = new Map<string, KernelConfig>();
let native: { engine?: ConvEngine; status: string; installKernels?: (backendName: string) => string[] } | undefined;

/** Conv kernels' inputs: x+filter (forward), dy+filter (backprop input) or x+dy (backprop filter). */
type ConvInputs = { x: TensorInfo; filter: TensorInfo; dy: TensorInfo };
type KernelArgs = { inputs: ConvInputs; backend: unknown; attrs?: NamedAttrMap };
type Attrs = { strides: number | [number, number, number]; pad: 'same' | 'valid'; dilations?: number | [number, number, number]; dataFormat?: string };
type Shape5 = [number, number, number, number, number];

/** Loads core/tf/native-engine.ts when present (it is optional and owned by another module). */
async function loadNative(): Promise<NonNullable<typeof native>> {
  if (native) return native;
  try {
    const specifier = './native-engine.js';
    const mod = (await import(specifier)) as Partial<NativeEngineModule>;
    const engine = typeof mod.loadNativeConvEngine === 'function' ? mod.loadNativeConvEngine() : undefined;
    native = {
      engine,
      status: typeof mod.nativeEngineStatus === 'function' ? mod.nativeEngineStatus() : 'no status',
      installKernels: engine && typeof mod.installNativeKernels === 'function' ? mod.installNativeKernels : undefined,
    };
  } catch (err) {
    // A configuration mistake (a malformed FEDSEG_THREADS) must stop the run, not fall back quietly.
    if (err instanceof FedSegError) throw err;
    native = { status: `native engine unavailable: ${errorMessage(err).split('\n')[0]}` };
  }
  return native;
}

/** Which mode the environment asks for on this backend (FEDSEG_FAST_CONV=0 -> stock). */
export async function defaultConvMode(backendName: string): Promise<ConvKernelMode> {
  if (process.env.FEDSEG_FAST_CONV === '0') return 'stock';
  if ((await loadNative()).engine) return 'native'; // FEDSEG_NATIVE=off disables it (native-engine.ts)
  return backendName === 'wasm' ? 'xnnpack' : 'js';
}

/** TF.js's own kernel that FedSeg replaced (for tests and benchmarks), once any mode was installed. */
export function stockConvKernel(backendName: string, kernelName: string): KernelConfig | undefined {
  return stockConfigs.get(`${backendName}/${kernelName}`);
}

/** Called by initBackend: installs the default mode on wasm/cpu; other backends keep their kernels. */
export async function installFastConv(backendName: string): Promise<FastConvStatus> {
  if (backendName !== 'wasm' && backendName !== 'cpu') return { enabled: false, engine: 'none', mode: 'stock' };
  const status = await setConvKernels(backendName, await defaultConvMode(backendName));
  // The addon's other kernels come with it; they wrap whatever is registered (FedSeg's or stock).
  if (status.mode === 'native') native?.installKernels?.(backendName);
  return status;
}

/** Switches the conv kernels of one backend (tests and benchmarks compare modes with this). */
export async function setConvKernels(backendName: 'wasm' | 'cpu', mode: ConvKernelMode): Promise<FastConvStatus> {
  if (mode === 'xnnpack' && backendName !== 'wasm') throw new Error('the xnnpack conv engine exists only on the wasm backend');
  let engine: ConvEngine | undefined;
  if (mode === 'native') {
    engine = (await loadNative()).engine;
    if (!engine) throw new Error(`native conv engine requested but ${native?.status}`);
  }
  for (const name of KERNELS) {
    const key = `${backendName}/${name}`;
    if (!stockConfigs.has(key)) {
      const stock = tf.getKernel(name, backendName);
      if (!stock) throw new Error(`backend ${backendName} has no ${name} kernel to replace`);
      stockConfigs.set(key, stock);
    }
    const stock = stockConfigs.get(key)!;
    const kernelFunc = chooseKernel(backendName, name, mode, engine, stock);
    tf.unregisterKernel(name, backendName);
    tf.registerKernel(kernelFunc === stock.kernelFunc ? stock : { kernelName: name, backendName, kernelFunc });
  }
  return { enabled: mode !== 'stock', engine: describeMode(mode, engine), mode };
}

function describeMode(mode: ConvKernelMode, engine: ConvEngine | undefined): string {
  switch (mode) {
    case 'native': return engine!.name;
    case 'xnnpack': return 'wasm-xnnpack (XNNPACK conv2d per depth tap + GEMM, 64 MiB buffer budget)';
    case 'js': return 'js-direct';
    case 'stock': return 'stock';
  }
}

function chooseKernel(backendName: string, name: ConvKernelName, mode: ConvKernelMode, engine: ConvEngine | undefined,
  stock: KernelConfig): KernelFunc {
  const brokenStock = backendName === 'wasm' && name !== tf.Conv3D;
  if (mode === 'stock') return brokenStock ? rawKernel(backendName, name, jsConvEngine, stock) : stock.kernelFunc;
  if (mode === 'xnnpack') return xnnpackKernel(name, stock);
  return rawKernel(backendName, name, mode === 'native' ? engine! : jsConvEngine, stock);
}

/** Geometry of a conv kernel call, or undefined when it is not a float32 NDHWC call we handle. */
function geometryOf(name: ConvKernelName, inputs: ConvInputs, attrs: Attrs): Conv3DGeometry | undefined {
  if (Object.values(inputs).some((t: TensorInfo) => t.dtype !== 'float32')) return undefined;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NDHWC') return undefined;
  let info: tf.backend_util.Conv3DInfo;
  if (name === tf.Conv3D) {
    info = tf.backend_util.computeConv3DInfo(inputs.x.shape as Shape5, inputs.filter.shape as Shape5, attrs.strides, attrs.dilations ?? 1, attrs.pad);
  } else if (name === tf.Conv3DBackpropInputV2) {
    const inputShape = (attrs as unknown as { inputShape: Shape5 }).inputShape;
    info = tf.backend_util.computeConv3DInfo(inputShape, inputs.filter.shape as Shape5, attrs.strides, 1, attrs.pad);
  } else {
    const filterShape = (attrs as unknown as { filterShape: Shape5 }).filterShape;
    info = tf.backend_util.computeConv3DInfo(inputs.x.shape as Shape5, filterShape, attrs.strides, 1, attrs.pad);
  }
  return geometryFromConvInfo(info);
}

function outShapeOf(name: ConvKernelName, g: Conv3DGeometry): number[] {
  if (name === tf.Conv3D) return [g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels];
  if (name === tf.Conv3DBackpropInputV2) return [g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels];
  return [g.filterDepth, g.filterHeight, g.filterWidth, g.inChannels, g.outChannels];
}

/** Kernel over raw Float32Arrays (js or native engine) on either backend. */
function rawKernel(backendName: string, name: ConvKernelName, engine: ConvEngine, stock: KernelConfig): KernelFunc {
  return ((args: KernelArgs) => {
    const g = geometryOf(name, args.inputs, (args.attrs ?? {}) as unknown as Attrs);
    if (!g || !engine.supports(g)) return stock.kernelFunc(args as never);
    const ordered = name === tf.Conv3D ? [args.inputs.x, args.inputs.filter]
      : name === tf.Conv3DBackpropInputV2 ? [args.inputs.dy, args.inputs.filter] : [args.inputs.x, args.inputs.dy];
    const out = runRawKernel(backendName, args.backend, ordered, outShapeOf(name, g), ([a, b], result) => {
      if (name === tf.Conv3D) engine.forward(a, b, g, result);
      else if (name === tf.Conv3DBackpropInputV2) engine.backpropInput(a, b, g, result);
      else engine.backpropFilter(a, b, g, result);
    });
    return out ?? stock.kernelFunc(args as never);
  }) as unknown as KernelFunc;
}

function xnnpackKernel(name: ConvKernelName, stock: KernelConfig): KernelFunc {
  return ((args: KernelArgs) => {
    const g = geometryOf(name, args.inputs, (args.attrs ?? {}) as unknown as Attrs);
    if (!g) return stock.kernelFunc(args as never);
    const backend = args.backend as WasmBackendLike;
    const { inputs } = args;
    if (name === tf.Conv3D) return wasmConvForward(backend, inputs.x, inputs.filter, g);
    if (name === tf.Conv3DBackpropInputV2) return wasmConvBackpropInput(backend, inputs.dy, inputs.filter, g);
    return wasmConvBackpropFilter(backend, inputs.x, inputs.dy, g);
  }) as unknown as KernelFunc;
}
