/**
 * Runs a computation over raw Float32Arrays as a kernel of the wasm or cpu backend: inputs are read
 * without copying (wasm heap views / the cpu backend's own arrays) and the output is allocated where
 * the backend keeps its data. Returns undefined when an input is not float32 data we can view, so the
 * caller can fall back to another implementation.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm that raw kernels use. */
export interface WasmBackendLike {
  wasm: { cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void };
  dataIdMap: { get(dataId: object): { id: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

interface CpuBackendLike {
  data: { get(id: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): TensorInfo;
}

export function runRawKernel(
  backendName: string,
  backend: unknown,
  inputs: readonly TensorInfo[],
  outShape: number[],
  compute: (inputs: Float32Array[], out: Float32Array) => void,
): TensorInfo | undefined {
  if (inputs.some((t) => t.dtype !== 'float32')) return undefined;
  if (backendName === 'wasm') {
    const wasm = backend as WasmBackendLike;
    const out = wasm.makeOutput(outShape, 'float32');
    // Views are taken after the only allocation; `compute` must not allocate wasm memory.
    const views = inputs.map((t) => wasm.typedArrayFromHeap(t) as Float32Array);
    compute(views, wasm.typedArrayFromHeap(out) as Float32Array);
    return out;
  }
  if (backendName === 'cpu') {
    const cpu = backend as CpuBackendLike;
    const values = inputs.map((t) => cpu.data.get(t.dataId).values);
    if (!values.every((v): v is Float32Array => v instanceof Float32Array)) return undefined;
    const out = new Float32Array(outShape.reduce((a, b) => a * b, 1));
    compute(values, out);
    return cpu.makeTensorInfo(outShape, 'float32', out);
  }
  return undefined;
}

/** What one call of a raw kernel reads, the shape it writes, and the loop that writes it. */
export interface RawKernelPlan {
  inputs: TensorInfo[];
  outShape: number[];
  compute: (inputs: Float32Array[], out: Float32Array) => void;
}

/**
 * Registers `kernelName` on the wasm or cpu backend as a raw loop: `plan` turns one call's inputs
 * and attributes into what runRawKernel runs. An input that is not float32 is an error naming the kernel.
 */
export function registerRawKernel<Inputs extends Record<string, TensorInfo>, Attrs = Record<string, never>>(
  kernelName: string,
  backendName: string,
  plan: (inputs: Inputs, attrs: Attrs) => RawKernelPlan,
): void {
  const kernelFunc = ({ inputs, backend, attrs }: { inputs: Inputs; backend: unknown; attrs: Attrs }) => {
    const call = plan(inputs, attrs);
    const out = runRawKernel(backendName, backend, call.inputs, call.outShape, call.compute);
    if (!out) throw new Error(`${kernelName}: unsupported inputs ${call.inputs.map((t) => t.dtype).join(', ')}`);
    return out;
  };
  tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as unknown as KernelFunc });
}
