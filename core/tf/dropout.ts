/**
 * Inverted dropout whose mask is a pure function of (seed, voxel index), so the backward pass
 * regenerates it instead of keeping it.
 *
 * TF.js's tf.dropout builds the mask from four full-size temporaries (uniform noise, +keep, floor,
 * /keep) and the tape keeps the mask and the output until the backward pass: at the U-Net's top
 * level (128^3 x 16 channels, 134 MB a tensor) that is 1.3 GB for the two dropout layers, which put
 * the seed's 128^3 training step past the wasm backend's 4 GB heap. Dropout is linear in x with a
 * fixed mask, so its gradient is the same op on dy with the same seed: nothing is saved.
 *
 * One kernel does it, with no temporaries: a raw loop on wasm and cpu (replaced by the native addon's
 * threaded loop where it loads, core/tf/native-engine.ts), the same hash in WGSL on webgpu, so every
 * backend drops the same voxels (a site's backend does not change its training).
 * tfjs-node runs TF.js's dropout with the same seed in both directions (its seeded noise repeats).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { registerRawKernel } from './raw-kernel.js';

/** The kernel's name (the native addon registers its own implementation under it). */
export const DROPOUT_KERNEL = 'FedSegSeededDropout';

/** Dropout of a layer: the rate and this call's seed. */
export interface DropoutSpec {
  rate: number;
  seed: number;
}

/**
 * The mask applied to t: the forward value, and also the gradient (dropout is linear with a fixed
 * mask). It has no gradient of its own: the op that uses it applies it in its backward pass too
 * (core/tf/fused-conv.ts fuses it into the convolution that follows it).
 */
export function applyDropoutMask(t: tf.Tensor, { rate, seed }: DropoutSpec): tf.Tensor {
  checkRate(rate);
  const attrs = { rate, seed: seed >>> 0 };
  return tf.getKernel(DROPOUT_KERNEL, tf.getBackend()) && t.dtype === 'float32'
    ? (tf.engine().runKernel(DROPOUT_KERNEL, { x: t }, attrs) as tf.Tensor)
    : tf.tidy(() => tf.dropout(t, rate, undefined, attrs.seed));
}

function checkRate(rate: number): void {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must be in [0, 1), got ${rate}`);
}

/**
 * 32-bit avalanche hash of (seed, index) (Wellons' lowbias32 finaliser over a Weyl step): every
 * output bit depends on every input bit, so neighbouring voxels get independent keep decisions.
 */
function hash(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index, 0x9e3779b9)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * What every implementation (this loop, the WGSL shader, the native addon) gets from the rate: voxel i
 * is kept when hash(seed, i) < threshold (the integer form of u < 1 - rate, u = hash / 2^32) and then
 * multiplied by scale (1 / (1 - rate) as a float32).
 */
export function dropoutConstants(rate: number): { threshold: number; scale: number } {
  return { threshold: Math.min(0xffffffff, Math.ceil((1 - rate) * 4294967296)), scale: Math.fround(1 / (1 - rate)) };
}

/** The raw loop, exported for tests: out[i] = keep(seed, i) ? x[i] / (1 - rate) : 0. */
export function dropoutRaw(x: Float32Array, rate: number, seed: number, out: Float32Array): void {
  const { threshold, scale } = dropoutConstants(rate);
  for (let i = 0; i < x.length; i++) out[i] = hash(seed, i) < threshold ? x[i] * scale : 0;
}

/** The same loop as a tfjs-backend-webgpu program (the fields its runWebGPUProgram reads). */
class DropoutProgram {
  readonly variableNames = ['x'];
  readonly outputShape: number[];
  readonly shaderKey = 'fedsegSeededDropout';
  readonly dispatchLayout: { x: number[] };
  readonly dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly uniforms = 'seed : u32, threshold : u32, scale : f32,';
  readonly size = true;

  constructor(shape: readonly number[]) {
    this.outputShape = [...shape];
    this.dispatchLayout = { x: shape.map((_, axis) => axis) };
    this.dispatch = [Math.ceil(shape.reduce((a, b) => a * b, 1) / 128), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var h = uniforms.seed ^ (u32(index) * 0x9e3779b9u);
          h = h ^ (h >> 16u);
          h = h * 0x7feb352du;
          h = h ^ (h >> 15u);
          h = h * 0x846ca68bu;
          h = h ^ (h >> 16u);
          result[index] = select(0.0, x[index] * uniforms.scale, h < uniforms.threshold);
        }
      }`;
  }
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: TensorInfo[], dtype: 'float32', uniforms: { type: 'uint32' | 'float32'; data: number[] }[]): TensorInfo;
}

type DropoutInputs = { x: TensorInfo };
type DropoutAttrs = { rate: number; seed: number };

/** Registers the dropout kernel on wasm, cpu and webgpu (idempotent). */
export function registerDropoutKernel(backendName: string): void {
  if (!['wasm', 'cpu', 'webgpu'].includes(backendName) || tf.getKernel(DROPOUT_KERNEL, backendName)) return;
  if (backendName !== 'webgpu') {
    registerRawKernel<DropoutInputs, DropoutAttrs>(DROPOUT_KERNEL, backendName, ({ x }, { rate, seed }) => (
      { inputs: [x], outShape: [...x.shape], compute: ([xs], o) => dropoutRaw(xs, rate, seed, o) }));
    return;
  }
  const kernelFunc = ({ inputs: { x }, backend, attrs }: { inputs: DropoutInputs; backend: unknown; attrs: DropoutAttrs }) => {
    const { threshold, scale } = dropoutConstants(attrs.rate);
    const uniforms = [
      { type: 'uint32' as const, data: [attrs.seed] },
      { type: 'uint32' as const, data: [threshold] },
      { type: 'float32' as const, data: [scale] },
    ];
    return (backend as WebGpuBackendLike).runWebGPUProgram(new DropoutProgram(x.shape), [x], 'float32', uniforms);
  };
  tf.registerKernel({ kernelName: DROPOUT_KERNEL, backendName, kernelFunc: kernelFunc as unknown as KernelFunc });
}
