/**
 * Random conv3d cases checked against TF.js's stock cpu kernels. Shared by native-conv.test.ts and the
 * child processes it starts to cover every instruction-set path (FEDSEG_NATIVE_ISA) of the addon.
 * Deliberately imports tfjs-core + tfjs-backend-cpu directly instead of core/tf/backend.ts: the
 * reference must be TF.js's own kernels, never FedSeg's replacements.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { ConvEngine, Conv3DGeometry } from '../../core/tf/conv-engine.js';
import { geometryFromConvInfo } from '../../core/tf/conv-engine.js';

export interface CaseResult {
  label: string;
  forward: number;
  backpropInput: number;
  backpropFilter: number;
}

/** max |a - b| / max |b|: the tolerance is relative to the tensor's scale, as float32 rounding is. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / (scale || 1);
}

/** Small deterministic PRNG so a failing case can be reproduced from its label. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ConvCase {
  batch: number;
  inShape: [number, number, number];
  inChannels: number;
  outChannels: number;
  filter: [number, number, number];
  strides: [number, number, number];
  dilations: [number, number, number];
  pad: 'same' | 'valid';
}

/** Random cases plus fixed ones that hit the special paths (1x1x1 direct rows, U-Net 3x3x3 layers). */
export function convCases(count: number, seed: number): ConvCase[] {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const cases: ConvCase[] = [
    { batch: 1, inShape: [12, 12, 12], inChannels: 16, outChannels: 16, filter: [3, 3, 3], strides: [1, 1, 1], dilations: [1, 1, 1], pad: 'same' },
    { batch: 2, inShape: [9, 7, 11], inChannels: 16, outChannels: 4, filter: [1, 1, 1], strides: [1, 1, 1], dilations: [1, 1, 1], pad: 'valid' },
    { batch: 1, inShape: [10, 10, 10], inChannels: 3, outChannels: 40, filter: [3, 3, 3], strides: [1, 1, 1], dilations: [1, 1, 1], pad: 'same' },
    { batch: 1, inShape: [6, 6, 6], inChannels: 64, outChannels: 33, filter: [3, 3, 3], strides: [1, 1, 1], dilations: [1, 1, 1], pad: 'same' },
    { batch: 1, inShape: [4, 5, 6], inChannels: 5, outChannels: 7, filter: [1, 1, 1], strides: [3, 3, 3], dilations: [1, 1, 1], pad: 'same' },
    // Long rows (w >= 2 x 24 tiles): the gather-free direct path, its border rows and partial tiles.
    { batch: 2, inShape: [3, 4, 61], inChannels: 16, outChannels: 16, filter: [3, 3, 3], strides: [1, 1, 1], dilations: [1, 1, 1], pad: 'same' },
    { batch: 1, inShape: [3, 3, 50], inChannels: 8, outChannels: 40, filter: [3, 3, 3], strides: [1, 1, 2], dilations: [1, 1, 1], pad: 'same' },
    { batch: 1, inShape: [4, 3, 45], inChannels: 3, outChannels: 16, filter: [3, 3, 3], strides: [1, 1, 1], dilations: [1, 1, 1], pad: 'valid' },
    { batch: 1, inShape: [2, 2, 70], inChannels: 32, outChannels: 5, filter: [2, 3, 5], strides: [2, 1, 1], dilations: [1, 1, 1], pad: 'same' },
  ];
  while (cases.length < count) {
    const filter: [number, number, number] = [int(1, 3), int(1, 3), int(1, 3)];
    const dilated = rand() < 0.15;
    const strides: [number, number, number] = dilated ? [1, 1, 1] : [int(1, 3), int(1, 3), int(1, 3)];
    const dilations: [number, number, number] = dilated ? [int(1, 2), int(1, 2), int(1, 2)] : [1, 1, 1];
    const reach = filter.map((f, i) => (f - 1) * dilations[i] + 1);
    cases.push({
      batch: int(1, 2),
      inShape: [reach[0] + int(0, 6), reach[1] + int(0, 6), reach[2] + int(0, 6)],
      inChannels: int(1, 20),
      outChannels: int(1, 40),
      filter,
      strides,
      dilations,
      pad: rand() < 0.5 ? 'same' : 'valid',
    });
  }
  return cases;
}

export function caseLabel(c: ConvCase): string {
  return `n${c.batch} in${c.inShape.join('x')}x${c.inChannels} f${c.filter.join('x')}->${c.outChannels} s${c.strides.join('')} d${c.dilations.join('')} ${c.pad}`;
}

/** Runs one case through the engine and TF.js's stock cpu kernels; backprops only without dilation
 * (TF.js's Conv3DBackprop*V2 kernels have no dilation attribute). */
export function checkCase(engine: ConvEngine, c: ConvCase): CaseResult {
  tf.engine().startScope();
  try {
    return compareCase(engine, c);
  } finally {
    tf.engine().endScope();
  }
}

function compareCase(engine: ConvEngine, c: ConvCase): CaseResult {
  const x = tf.randomUniform([c.batch, ...c.inShape, c.inChannels], -1, 1) as tf.Tensor5D;
  const w = tf.randomUniform([...c.filter, c.inChannels, c.outChannels], -1, 1) as tf.Tensor5D;
  const info = tf.backend_util.computeConv3DInfo(x.shape, w.shape, c.strides, c.dilations, c.pad);
  const g: Conv3DGeometry = geometryFromConvInfo(info);
  const y = tf.conv3d(x, w, c.strides, c.pad, 'NDHWC', c.dilations);
  const yOut = new Float32Array(y.size);
  engine.forward(x.dataSync() as Float32Array, w.dataSync() as Float32Array, g, yOut);
  const result: CaseResult = { label: caseLabel(c), forward: relativeError(yOut, y.dataSync() as Float32Array), backpropInput: 0, backpropFilter: 0 };
  if (c.dilations.some((d) => d !== 1)) return result;
  const dy = tf.randomUniform(y.shape, -1, 1);
  const dx = tf.engine().runKernel('Conv3DBackpropInputV2', { dy, filter: w }, { strides: c.strides, pad: c.pad, inputShape: x.shape }) as tf.Tensor;
  const dw = tf.engine().runKernel('Conv3DBackpropFilterV2', { x, dy }, { strides: c.strides, pad: c.pad, filterShape: w.shape }) as tf.Tensor;
  const dxOut = new Float32Array(dx.size).fill(Number.NaN); // NaN: proves every element is written
  const dwOut = new Float32Array(dw.size).fill(Number.NaN);
  engine.backpropInput(dy.dataSync() as Float32Array, w.dataSync() as Float32Array, g, dxOut);
  engine.backpropFilter(x.dataSync() as Float32Array, dy.dataSync() as Float32Array, g, dwOut);
  result.backpropInput = relativeError(dxOut, dx.dataSync() as Float32Array);
  result.backpropFilter = relativeError(dwOut, dw.dataSync() as Float32Array);
  return result;
}

export async function useCpuReference(): Promise<void> {
  await tf.setBackend('cpu');
}
