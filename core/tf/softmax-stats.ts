/**
 * What the Dice + focal loss needs of the network's logits, in one pass over the voxels: with
 * p = softmax(z) over the last (class) axis and labels y, per class c
 *   overlap_c = sum y_c p_c,   predicted_c = sum p_c,   truth_c = sum y_c,
 * and focal = sum_c sum y_c (1 - p_c)^gamma (-log p_c), returned as one vector
 * [overlap (C), predicted (C), truth (C), focal]. Its gradient with respect to z comes from a second
 * kernel that recomputes p and applies the chain rule through the softmax in closed form:
 *   h_c = p_c dS/dp_c (finite however small p_c is: the focal term's 1/p_c cancels),
 *   dz_k = h_k - p_k sum_c h_c.
 *
 * Composed from TF.js ops, the loss ran about fifteen full-size elementwise passes (softmax,
 * log-softmax, exp, pow, three products, four reductions, and their gradients), each a
 * single-threaded wasm loop writing a new 128^3 x 4 tensor: 16 % of the 128^3 step. These kernels
 * read the logits and labels in place, accumulate in float64 and allocate nothing but their output.
 * On wasm and cpu; other backends (webgpu, tfjs-node) compose the same statistics from stock ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { checkpointed } from './checkpoint.js';
import { registerRawKernel } from './raw-kernel.js';

const STATS = 'FedSegSoftmaxStats';
const STATS_GRAD = 'FedSegSoftmaxStatsGrad';

/** Entries of the statistics vector for `classes` classes: overlap, predicted, truth, then focal. */
export function statsLength(classes: number): number {
  return 3 * classes + 1;
}

/** The statistics of softmax(z) against y (see the header), differentiable in z; y gets no gradient. */
export function softmaxStats(z: tf.Tensor, y: tf.Tensor, gamma: number): tf.Tensor1D {
  const kernels = gamma >= 1 && z.dtype === 'float32' && y.dtype === 'float32' && tf.getKernel(STATS, tf.getBackend()) !== undefined;
  return kernels ? fusedStats(z, y, gamma) : softmaxStatsFromOps(z, y, gamma);
}

function fusedStats(z: tf.Tensor, y: tf.Tensor, gamma: number): tf.Tensor1D {
  return tf.engine().runKernel(STATS, { z, y }, { gamma }) as tf.Tensor1D;
}

/**
 * The statistics kernel's gradient, registered like TF.js's own: the tape keeps z and y for it, and
 * the labels' gradient (zeros) is only built if something asks for it, which training never does.
 */
const statsGradient: tf.GradConfig = {
  kernelName: STATS,
  inputsToSave: ['z', 'y'],
  gradFunc: (dStats: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [z, y] = saved;
    return {
      z: () => tf.engine().runKernel(STATS_GRAD, { z, y, dStats: dStats as tf.Tensor }, attrs) as tf.Tensor,
      y: () => tf.zerosLike(y),
    };
  },
};

/** The same vector from stock ops, for the other backends (checkpointed: its temporaries are not kept for the backward pass). */
export function softmaxStatsFromOps(z: tf.Tensor, y: tf.Tensor, gamma: number): tf.Tensor1D {
  return checkpointed(([logits], [labels]) => {
    const axes = [...Array(labels.rank - 1).keys()];
    const logP = tf.logSoftmax(logits);
    const p = tf.exp(logP);
    const focal = tf.sum(tf.mul(tf.mul(labels, tf.pow(tf.sub(1, p), gamma)), tf.neg(logP)));
    return tf.concat([tf.sum(tf.mul(labels, p), axes), tf.sum(p, axes), tf.sum(labels, axes), tf.reshape(focal, [1])]) as tf.Tensor1D;
  })([z], [y]);
}

/**
 * Writes softmax(z[base .. base + C)) into p and returns log of its normaliser: log p_c =
 * z_c - (max + that). Plain loops and no returned object: this runs once per voxel.
 */
function softmaxRow(z: Float32Array, base: number, classes: number, p: Float64Array): number {
  let max = z[base];
  for (let c = 1; c < classes; c++) if (z[base + c] > max) max = z[base + c];
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const e = Math.exp(z[base + c] - max);
    p[c] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let c = 0; c < classes; c++) p[c] *= inv;
  return max + Math.log(sum);
}

/** q^g, without Math.pow's cost for the integer exponents the loss uses (gamma 2 by default). */
function power(q: number, g: number): number {
  return g === 2 ? q * q : g === 1 ? q : q ** g;
}

/** The raw forward loop, exported for tests: fills `out` (3C + 1 values). */
export function softmaxStatsRaw(z: Float32Array, y: Float32Array, classes: number, gamma: number, out: Float32Array): void {
  const acc = new Float64Array(statsLength(classes));
  const p = new Float64Array(classes);
  let focal = 0;
  for (let base = 0; base < z.length; base += classes) {
    const logNorm = softmaxRow(z, base, classes, p);
    for (let c = 0; c < classes; c++) {
      const label = y[base + c];
      acc[c] += label * p[c];
      acc[classes + c] += p[c];
      acc[2 * classes + c] += label;
      if (label !== 0) focal += label * power(1 - p[c], gamma) * (logNorm - z[base + c]);
    }
  }
  acc[3 * classes] = focal;
  out.set(acc);
}

/** The raw backward loop, exported for tests: dz for the upstream gradient `d` of the statistics vector. */
export function softmaxStatsGradRaw(z: Float32Array, y: Float32Array, d: Float32Array, classes: number, gamma: number, dz: Float32Array): void {
  const p = new Float64Array(classes);
  const h = new Float64Array(classes);
  const focal = d[3 * classes];
  for (let base = 0; base < z.length; base += classes) {
    const logNorm = softmaxRow(z, base, classes, p);
    let total = 0;
    for (let c = 0; c < classes; c++) {
      const label = y[base + c];
      let hc = p[c] * (d[c] * label + d[classes + c]);
      if (label !== 0 && focal !== 0) {
        // p d/dp [(1 - p)^g (-log p)] = g p (1 - p)^(g-1) log p - (1 - p)^g
        const q = 1 - p[c];
        hc += focal * label * (gamma * p[c] * power(q, gamma - 1) * (z[base + c] - logNorm) - power(q, gamma));
      }
      h[c] = hc;
      total += hc;
    }
    for (let c = 0; c < classes; c++) dz[base + c] = h[c] - p[c] * total;
  }
}

/** Registers both kernels on wasm and cpu (idempotent). */
export function registerSoftmaxStatsKernels(backendName: string): void {
  if ((backendName !== 'wasm' && backendName !== 'cpu') || tf.getKernel(STATS, backendName)) return;
  registerRawKernel<{ z: TensorInfo; y: TensorInfo }, { gamma: number }>(STATS, backendName, ({ z, y }, { gamma }) => {
    const classes = z.shape[z.shape.length - 1];
    return { inputs: [z, y], outShape: [statsLength(classes)], compute: ([zs, ys], o) => softmaxStatsRaw(zs, ys, classes, gamma, o) };
  });
  registerRawKernel<{ z: TensorInfo; y: TensorInfo; dStats: TensorInfo }, { gamma: number }>(STATS_GRAD, backendName, ({ z, y, dStats }, { gamma }) => {
    const classes = z.shape[z.shape.length - 1];
    return { inputs: [z, y, dStats], outShape: [...z.shape], compute: ([zs, ys, ds], o) => softmaxStatsGradRaw(zs, ys, ds, classes, gamma, o) };
  });
  // Gradients are global, not per backend.
  if (!tf.getGradient(STATS)) tf.registerGradient(statsGradient);
}
