/**
 * 3D depth-to-space and its inverse for NDHWC tensors, the data movement of the U-Net's transposed
 * convolution (core/model/layers.ts transposeUp) and of the attention gate's strided convolution:
 *
 *   depthToSpace3d: [n, d, h, w, 8c] -> [n, 2d, 2h, 2w, c]; channel block (a, b, e) of voxel (i, j, k)
 *                   (channels ((a * 2 + b) * 2 + e) * c ... + c - 1) moves to voxel (2i + a, 2j + b, 2k + e).
 *   spaceToDepth3d: the inverse.
 *
 * Composed from stock ops these are a reshape to rank 6, a rank-6 transpose and a reshape. On wasm the
 * rank-6 Transpose was the most expensive kernel of a 128^3 training step (36 % of kernel time, more
 * than every convolution together): here each is one pass of row copies over raw arrays on wasm and
 * cpu. Both are permutations, so each one's gradient is the other, and nothing is saved for it.
 * Other backends (webgpu, tfjs-node) run the reshape/transpose composition.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { registerRawKernel } from './raw-kernel.js';

type T5 = tf.Tensor5D;
type Shape5 = [number, number, number, number, number];

const DEPTH_TO_SPACE = 'FedSegDepthToSpace3D';
const SPACE_TO_DEPTH = 'FedSegSpaceToDepth3D';

/** [n, d, h, w, 8c] -> [n, 2d, 2h, 2w, c]. */
export function depthToSpace3d(x: T5): T5 {
  if (x.rank !== 5 || x.shape[4] % 8 !== 0) throw new Error(`depthToSpace3d needs [n, d, h, w, 8c], got [${x.shape}]`);
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: runShuffle(DEPTH_TO_SPACE, args[0] as T5),
    gradFunc: (dy: tf.Tensor) => runShuffle(SPACE_TO_DEPTH, dy as T5),
  }))(x) as T5;
}

/** [n, 2d, 2h, 2w, c] -> [n, d, h, w, 8c]. */
export function spaceToDepth3d(x: T5): T5 {
  if (x.rank !== 5 || x.shape.slice(1, 4).some((s) => s % 2 !== 0)) throw new Error(`spaceToDepth3d needs [n, 2d, 2h, 2w, c], got [${x.shape}]`);
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: runShuffle(SPACE_TO_DEPTH, args[0] as T5),
    gradFunc: (dy: tf.Tensor) => runShuffle(DEPTH_TO_SPACE, dy as T5),
  }))(x) as T5;
}

function runShuffle(kernel: typeof DEPTH_TO_SPACE | typeof SPACE_TO_DEPTH, x: T5): T5 {
  if (tf.getKernel(kernel, tf.getBackend()) && x.dtype === 'float32') return tf.engine().runKernel(kernel, { x }) as T5;
  return kernel === DEPTH_TO_SPACE ? depthToSpaceByTranspose(x) : spaceToDepthByTranspose(x);
}

/** The stock-op composition (other backends; exported for tests). */
export function depthToSpaceByTranspose(x: T5): T5 {
  const [n, d, h, w, c8] = x.shape;
  const c = c8 / 8;
  // [n*d, h, w, a, b, e*c] -> [n*d, a, h, b, w, e*c] == [n, 2d, 2h, 2w, c] in row-major order.
  return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(x, [n * d, h, w, 2, 2, 2 * c]), [0, 3, 1, 4, 2, 5]), [n, 2 * d, 2 * h, 2 * w, c]));
}

export function spaceToDepthByTranspose(x: T5): T5 {
  const [n, d2, h2, w2, c] = x.shape;
  const [d, h, w] = [d2 / 2, h2 / 2, w2 / 2];
  // [n*d, a, h, b, w, e*c] -> [n*d, h, w, a, b, e*c]: each voxel's channels hold one 2x2x2 block in (a, b, e) order.
  return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(x, [n * d, 2, h, 2, w, 2 * c]), [0, 2, 4, 1, 3, 5]), [n, d, h, w, 8 * c]));
}

/**
 * Calls copy(deep, shallow) for every c-channel run: `deep` indexes [n, d, h, w, 8c], `shallow`
 * [n, 2d, 2h, 2w, c], visiting the shallow (2x finer) tensor in memory order.
 */
function forEachRun(deepShape: Shape5, copy: (deep: number, shallow: number) => void): void {
  const [n, d, h, w, c8] = deepShape;
  const c = c8 / 8;
  let shallow = 0;
  for (let b = 0; b < n; b++)
    for (let od = 0; od < 2 * d; od++)
      for (let oh = 0; oh < 2 * h; oh++) {
        const row = ((b * d + (od >> 1)) * h + (oh >> 1)) * w;
        const block = ((od & 1) * 2 + (oh & 1)) * 2;
        for (let ow = 0; ow < 2 * w; ow++, shallow += c) copy((row + (ow >> 1)) * c8 + (block + (ow & 1)) * c, shallow);
      }
}

/** Registers both kernels on wasm/cpu (idempotent). */
export function registerDepthToSpaceKernels(backendName: string): void {
  if ((backendName !== 'wasm' && backendName !== 'cpu') || tf.getKernel(DEPTH_TO_SPACE, backendName)) return;
  registerRawKernel<{ x: TensorInfo }>(DEPTH_TO_SPACE, backendName, ({ x }) => {
    const [n, d, h, w, c8] = x.shape as Shape5;
    const c = c8 / 8;
    return {
      inputs: [x], outShape: [n, 2 * d, 2 * h, 2 * w, c],
      compute: ([src], dst) => forEachRun([n, d, h, w, c8], (deep, shallow) => { for (let k = 0; k < c; k++) dst[shallow + k] = src[deep + k]; }),
    };
  });
  registerRawKernel<{ x: TensorInfo }>(SPACE_TO_DEPTH, backendName, ({ x }) => {
    const [n, d2, h2, w2, c] = x.shape as Shape5;
    const deepShape: Shape5 = [n, d2 / 2, h2 / 2, w2 / 2, 8 * c];
    return {
      inputs: [x], outShape: deepShape,
      compute: ([src], dst) => forEachRun(deepShape, (deep, shallow) => { for (let k = 0; k < c; k++) dst[deep + k] = src[shallow + k]; }),
    };
  });
}
