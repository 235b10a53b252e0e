/**
 * The WebGPU route: `@tensorflow/tfjs-backend-webgpu` on the GPU that the optional `webgpu` package
 * (Dawn, prebuilt inside the package: Vulkan on Linux, D3D12 on Windows, Metal on macOS) finds. No
 * CUDA or cuDNN install: a site needs only its ordinary graphics driver (on Linux the Vulkan loader,
 * Debian `libvulkan1`, and the vendor's Vulkan driver).
 *
 * Both packages load by dynamic import, so a site without them (or without a Vulkan loader) gets a
 * clean error that backend.ts turns into a fallback with its reason. A software adapter (SwiftShader,
 * or any adapter Dawn marks as a fallback) computes on the CPU far slower than FedSeg's CPU kernels;
 * it is used only when webgpu is asked for explicitly (FEDSEG_BACKEND=webgpu / --backend webgpu), which
 * is how the tests run FedSeg on webgpu without a GPU.
 */
import * as tf from '@tensorflow/tfjs-core';

/** What the adapter says about itself (GPUAdapterInfo), for the backend line every command shows. */
export interface WebGpuAdapterSummary {
  vendor: string;
  architecture: string;
  /** Driver or product name, e.g. "NVIDIA H200" or "SwiftShader driver 5.0.0". */
  description: string;
  /** True for a CPU implementation (SwiftShader, Dawn's fallback adapter). */
  software: boolean;
}

interface AdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
  features: Set<string>;
  requestDevice(descriptor: object): Promise<unknown>;
}
interface GpuLike {
  requestAdapter(options: object): Promise<AdapterLike | null>;
}
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: object;
}
interface WebGpuBackendModule {
  WebGPUBackend: new (device: unknown, adapterInfo: unknown) => tf.KernelBackend;
}

let gpu: Promise<GpuLike> | undefined;

/** Dawn's GPU object, created once per process (its globals — GPUBufferUsage etc. — become global). */
function dawn(): Promise<GpuLike> {
  gpu ??= (async () => {
    const specifier: string = 'webgpu'; // optional dependency: keep it out of type resolution
    let mod: DawnModule;
    try {
      mod = (await import(specifier)) as DawnModule;
    } catch (err) {
      throw new Error(`the optional package 'webgpu' did not load (${firstLine(err)})`);
    }
    Object.assign(globalThis, mod.globals);
    return mod.create([]);
  })();
  return gpu;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

function summarise(adapter: AdapterLike): WebGpuAdapterSummary {
  const info = adapter.info ?? {};
  const architecture = info.architecture ?? '';
  return {
    vendor: info.vendor || 'unknown vendor',
    architecture,
    description: info.description || info.device || 'unnamed adapter',
    software: Boolean(info.isFallbackAdapter || adapter.isFallbackAdapter) || /swiftshader/i.test(`${architecture} ${info.description ?? ''}`),
  };
}

async function requestAdapter(): Promise<AdapterLike> {
  const adapter = await (await dawn()).requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error('no WebGPU adapter (no Vulkan/D3D12/Metal driver found; on Linux install libvulkan1 and the GPU vendor\'s Vulkan driver)');
  }
  return adapter;
}

/**
 * The adapter this process would train on, without touching TF.js (tests use it to decide whether the
 * webgpu checks can run). Rejects with the reason when there is none.
 */
export async function probeWebGpuAdapter(): Promise<WebGpuAdapterSummary> {
  return summarise(await requestAdapter());
}

/** One-line description, e.g. "webgpu (nvidia NVIDIA H200, hopper)". */
export function describeAdapter(a: WebGpuAdapterSummary): string {
  const arch = a.architecture ? `, ${a.architecture}` : '';
  return `webgpu (${a.vendor} ${a.description}${arch}${a.software ? '; software adapter on the CPU: for tests, not speed' : ''})`;
}

let registered: WebGpuAdapterSummary | undefined;

interface DeviceLike {
  addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
}

/**
 * A WebGPU validation error (a shader that does not compile, a bad binding) drops the whole command
 * buffer, and the tensors it should have written read back as zeros: training would go on with wrong
 * numbers. The device's first uncaptured error is kept and every later read rejects with it, so the
 * step, and the command, fails with the reason instead.
 */
function failLoudly(backend: tf.KernelBackend, device: DeviceLike): tf.KernelBackend {
  let failure: string | undefined;
  device.addEventListener('uncapturederror', (event) => {
    failure ??= event.error.message.split('\n')[0];
  });
  const read = backend.read.bind(backend);
  backend.read = async (dataId: object) => {
    const values = await read(dataId);
    if (failure) throw new Error(`WebGPU error, results are invalid: ${failure}`);
    return values;
  };
  return backend;
}

/**
 * Registers and activates TF.js's 'webgpu' backend on Dawn's adapter. `allowSoftware` is false when
 * picking automatically: a software adapter is then refused with the reason.
 */
export async function activateWebGpu(allowSoftware: boolean): Promise<WebGpuAdapterSummary> {
  if (!registered) {
    const adapter = await requestAdapter();
    const summary = summarise(adapter);
    if (summary.software && !allowSoftware) {
      throw new Error(`only a software adapter (${summary.vendor} ${summary.description}), used only with --backend webgpu / FEDSEG_BACKEND=webgpu`);
    }
    // Imported before navigator.gpu exists, so the package does not register its own 'webgpu' factory.
    const specifier: string = '@tensorflow/tfjs-backend-webgpu';
    let mod: WebGpuBackendModule;
    try {
      mod = (await import(specifier)) as WebGpuBackendModule;
    } catch (err) {
      throw new Error(`the optional package '@tensorflow/tfjs-backend-webgpu' did not load (${firstLine(err)})`);
    }
    // The same limits tfjs-backend-webgpu asks for in a browser (its conv and matmul tiling uses them).
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
      requiredLimits: Object.fromEntries(['maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize',
        'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup'].map((k) => [k, limits[k]])),
    });
    // WebGPUBackend's constructor checks navigator.gpu (Node 20 has no navigator; Node 21+ has one without gpu).
    const nav = ((globalThis as { navigator?: object }).navigator ??= {});
    if (!('gpu' in nav)) Object.defineProperty(nav, 'gpu', { value: await dawn(), configurable: true });
    tf.registerBackend('webgpu', () => failLoudly(new mod.WebGPUBackend(device, adapter.info), device as DeviceLike));
    registered = summary;
  } else if (registered.software && !allowSoftware) {
    throw new Error(`only a software adapter (${registered.vendor} ${registered.description}), used only with --backend webgpu / FEDSEG_BACKEND=webgpu`);
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') failed");
  await tf.ready();
  return registered;
}
