/**
 * The one place FedSeg picks its TensorFlow.js backend. Everything else gets `tf` from here, so the
 * same model code runs on tfjs-node-gpu, webgpu, tfjs-node, wasm and cpu, and FedSeg's extra gradients
 * and fast 3D-convolution kernels are registered exactly once whichever backend runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { FedSegError, errorMessage } from '../errors.js';
import { registerFedSegGradients } from './gradients.js';
import { loadStockGradients } from './stock-gradients.js';
import { installFastConv, type FastConvStatus } from './fast-conv.js';
import { installStepKernels } from './step-kernels.js';
import { registerUpsampleKernels } from './upsample.js';
import { registerDepthToSpaceKernels } from './depth-to-space.js';
import { registerDropoutKernel } from './dropout.js';
import { registerSoftmaxStatsKernels } from './softmax-stats.js';
import { activateWebGpu, describeAdapter, type WebGpuAdapterSummary } from './webgpu.js';
import { installWebGpuKernels } from './webgpu-kernels.js';
import { installWebGpuConv } from './webgpu-conv.js';

export { tf };

export const BACKEND_PREFERENCES = ['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

export interface BackendInfo {
  /** TF.js backend name actually active: 'tensorflow' (tfjs-node or -gpu), 'webgpu', 'wasm' or 'cpu'. */
  name: string;
  /** The GPU adapter, on webgpu. */
  adapter?: WebGpuAdapterSummary;
  tf: typeof tf;
  /** True when it runs on a GPU route (tensorflow-gpu or webgpu), whatever `detail` says. */
  gpu: boolean;
  /** True when FedSeg's fast conv3d kernels (wasm/cpu engines, or the tiled WGSL ones on webgpu) replace the backend's stock ones. */
  fastConv: boolean;
  /**
   * Human-readable one-liner, e.g. "wasm (SIMD, 1 thread) + FedSeg fast conv3d (wasm-xnnpack)"; when
   * 'auto' fell back from the GPU routes it ends with why, e.g. "; no GPU: webgpu: no WebGPU adapter (...)".
   */
  detail: string;
}

let active: { preference: BackendPreference; info: BackendInfo } | undefined;
let pending: Promise<BackendInfo> | undefined;

/**
 * Selects and initialises the backend. `pref` overrides env FEDSEG_BACKEND, which overrides 'auto'
 * (tensorflow-gpu > webgpu on a hardware adapter > tensorflow > wasm > cpu). An explicit choice that
 * cannot load is an error; 'auto' falls through. Idempotent: repeated calls with the same preference
 * return the same info.
 */
export async function initBackend(pref?: BackendPreference): Promise<BackendInfo> {
  const preference = resolvePreference(pref);
  while (pending) await pending.catch(() => undefined);
  if (active && active.preference === preference) return active.info;
  pending = select(preference);
  try {
    const info = await pending;
    active = { preference, info };
    return info;
  } finally {
    pending = undefined;
  }
}

/** One line for CLI/app display; says "not initialised" before `initBackend`. */
export function describeBackend(): string {
  return active ? active.info.detail : 'TensorFlow.js backend not initialised';
}

/** Info of the active backend, if `initBackend` has completed. */
export function activeBackend(): BackendInfo | undefined {
  return active?.info;
}

function resolvePreference(pref: BackendPreference | undefined): BackendPreference {
  const raw = pref ?? process.env.FEDSEG_BACKEND ?? 'auto';
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(raw)) {
    throw new FedSegError(`unknown TensorFlow.js backend '${raw}' (expected one of ${BACKEND_PREFERENCES.join(', ')})`, {
      field: pref === undefined ? 'FEDSEG_BACKEND' : 'backend',
    });
  }
  return raw as BackendPreference;
}

/** Activates one backend; `forced` is true when it was asked for by name rather than picked by 'auto'. */
type Loader = (forced: boolean) => Promise<{ base: string; adapter?: WebGpuAdapterSummary }>;

const GPU_ROUTES: readonly BackendPreference[] = ['tensorflow-gpu', 'webgpu'];

const LOADERS: Record<Exclude<BackendPreference, 'auto'>, Loader> = {
  'tensorflow-gpu': () => loadTfjsNode('@tensorflow/tfjs-node-gpu'),
  webgpu: async (forced) => {
    const adapter = await activateWebGpu(forced);
    return { base: describeAdapter(adapter), adapter };
  },
  tensorflow: () => loadTfjsNode('@tensorflow/tfjs-node'),
  wasm: loadWasm,
  cpu: async () => {
    await activate('cpu');
    return { base: 'cpu (pure JavaScript)' };
  },
};

async function select(preference: BackendPreference): Promise<BackendInfo> {
  await loadStockGradients();
  registerFedSegGradients();
  const order: Exclude<BackendPreference, 'auto'>[] =
    preference === 'auto' ? ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] : [preference];
  const failures: string[] = [];
  for (const candidate of order) {
    let loaded: Awaited<ReturnType<Loader>>;
    try {
      loaded = await LOADERS[candidate](preference !== 'auto');
    } catch (err) {
      failures.push(`${candidate}: ${errorMessage(err).split('\n')[0]}`);
      continue;
    }
    const name = tf.getBackend();
    registerUpsampleKernels(name);
    registerDropoutKernel(name);
    registerSoftmaxStatsKernels(name);
    registerDepthToSpaceKernels(name);
    installStepKernels(name);
    installWebGpuKernels(name);
    const fast: FastConvStatus = await installFastConv(name);
    const tiled = installWebGpuConv(name);
    let detail = fast.enabled ? `${loaded.base} + FedSeg fast conv3d (${fast.engine})`
      : tiled ? `${loaded.base} + FedSeg tiled conv3d (WGSL implicit GEMM)` : loaded.base;
    // Say why a site trains on the CPU: which GPU routes were tried and what stopped them.
    const gpuFailures = failures.filter((f) => GPU_ROUTES.some((r) => f.startsWith(`${r}:`)));
    if (!GPU_ROUTES.includes(candidate) && gpuFailures.length > 0) detail += `; no GPU: ${gpuFailures.join('; ')}`;
    return { name, tf, gpu: GPU_ROUTES.includes(candidate), fastConv: fast.enabled || tiled, detail, adapter: loaded.adapter };
  }
  throw new FedSegError(`no TensorFlow.js backend could be initialised (${failures.join('; ')})`, { field: 'backend' });
}

async function activate(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

/** tfjs-node(-gpu) are optional dependencies; a variable specifier keeps them out of type resolution. */
async function loadTfjsNode(pkg: string): Promise<{ base: string }> {
  const specifier: string = pkg;
  await import(specifier);
  await activate('tensorflow');
  return { base: pkg === '@tensorflow/tfjs-node-gpu' ? 'tensorflow (tfjs-node-gpu, CUDA)' : 'tensorflow (tfjs-node, libtensorflow CPU)' };
}

async function loadWasm(): Promise<{ base: string }> {
  // In Node the .wasm binaries must be read from the package's dist folder by file path.
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  setWasmPaths(`${dist}/`);
  await activate('wasm');
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const threads = getThreadsCount();
  return { base: `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})` };
}
