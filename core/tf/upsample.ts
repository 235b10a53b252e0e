/**
 * Nearest-neighbour 3D upsampling for NDHWC tensors. TF.js 4.22 has no gradient for tile/broadcastTo
 * above rank 4, so the op carries its own gradient: every output voxel copies exactly one input voxel,
 * hence the input gradient is the sum of the upstream gradient over each factor^3 block.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FedSegError } from '../errors.js';

/** Repeats every voxel `factor` times along depth, height and width: [n,d,h,w,c] -> [n,d*f,h*f,w*f,c]. */
export function upsample3d(x: tf.Tensor5D, factor = 2): tf.Tensor5D {
  if (x.rank !== 5) throw new FedSegError(`upsample3d expects a rank-5 NDHWC tensor, got shape [${x.shape}]`, { field: 'x' });
  if (!Number.isInteger(factor) || factor < 1) {
    throw new FedSegError(`upsample3d factor must be a positive integer, got ${factor}`, { field: 'factor' });
  }
  if (factor === 1) return tf.clone(x);
  const op = tf.customGrad<tf.Tensor5D>((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: repeatVoxels(args[0] as tf.Tensor5D, factor),
    gradFunc: (dy: tf.Tensor5D) => sumBlocks(dy, factor),
  }));
  return op(x);
}

/** Repeats along W, then H, then D, each a rank-4 tile so every backend supports it. */
function repeatVoxels(x: tf.Tensor5D, f: number): tf.Tensor5D {
  const [n, d, h, w, c] = x.shape;
  return tf.tidy(() => {
    const alongW = tf.tile(tf.reshape(x, [n * d * h, w, 1, c]), [1, 1, f, 1]);
    const alongH = tf.tile(tf.reshape(alongW, [n * d, h, 1, w * f * c]), [1, 1, f, 1]);
    const alongD = tf.tile(tf.reshape(alongH, [n, d, 1, h * f * w * f * c]), [1, 1, f, 1]);
    return tf.reshape(alongD, [n, d * f, h * f, w * f, c]);
  });
}

/** Adjoint of repeatVoxels: sums each f x f x f block, one axis at a time with rank-3 sums. */
function sumBlocks(dy: tf.Tensor5D, f: number): tf.Tensor5D {
  const [n, df, hf, wf, c] = dy.shape;
  const d = df / f;
  const h = hf / f;
  const w = wf / f;
  return tf.tidy(() => {
    const overW = tf.sum(tf.reshape(dy, [n * df * hf * w, f, c]), 1);
    const overH = tf.sum(tf.reshape(overW, [n * df * h, f, w * c]), 1);
    const overD = tf.sum(tf.reshape(overH, [n * d, f, h * w * c]), 1);
    return tf.reshape(overD, [n, d, h, w, c]);
  });
}
