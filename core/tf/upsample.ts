/**
 * Nearest-neighbour 3D upsampling for NDHWC tensors. TF.js 4.22 has no gradient for tile/broadcastTo
 * above rank 4, so the op carries its own gradient: every output voxel copies exactly one input voxel,
 * hence the input gradient is the sum of the upstream gradient over each factor^3 block.
 *
 * On wasm and cpu both directions are FedSeg kernels over raw arrays (row copies and one summing pass;
 * the wasm backend's generic Tile took seconds per 64^3 upsampling). Other backends (tfjs-node) use
 * rank-4 tiles and reshaped sums, which they run natively.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { FedSegError } from '../errors.js';
import { registerRawKernel } from './raw-kernel.js';

const UPSAMPLE = 'FedSegUpsample3D';
const UPSAMPLE_GRAD = 'FedSegUpsample3DGrad';

/** Repeats every voxel `factor` times along depth, height and width: [n,d,h,w,c] -> [n,d*f,h*f,w*f,c]. */
export function upsample3d(x: tf.Tensor5D, factor = 2): tf.Tensor5D {
  if (x.rank !== 5) throw new FedSegError(`upsample3d expects a rank-5 NDHWC tensor, got shape [${x.shape}]`, { field: 'x' });
  if (!Number.isInteger(factor) || factor < 1) {
    throw new FedSegError(`upsample3d factor must be a positive integer, got ${factor}`, { field: 'factor' });
  }
  if (factor === 1) return tf.clone(x);
  const native = tf.getKernel(UPSAMPLE, tf.getBackend()) !== undefined && x.dtype === 'float32';
  const op = tf.customGrad<tf.Tensor5D>((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: native
      ? (tf.engine().runKernel(UPSAMPLE, { x: args[0] as tf.Tensor5D }, { factor }) as tf.Tensor5D)
      : repeatVoxels(args[0] as tf.Tensor5D, factor),
    gradFunc: (dy: tf.Tensor5D) =>
      native ? (tf.engine().runKernel(UPSAMPLE_GRAD, { dy }, { factor }) as tf.Tensor5D) : sumBlocks(dy, factor),
  }));
  return op(x);
}

/** The tile-based path (used where FedSeg's kernels are not registered); exported for tests. */
export function upsample3dByTiling(x: tf.Tensor5D, factor: number): tf.Tensor5D {
  return tf.customGrad<tf.Tensor5D>((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: repeatVoxels(args[0] as tf.Tensor5D, factor),
    gradFunc: (dy: tf.Tensor5D) => sumBlocks(dy, factor),
  }))(x);
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

/** out = x repeated: build each output row once, then copy rows (H) and planes (D). */
function upsampleRaw(x: Float32Array, [n, d, h, w, c]: number[], f: number, out: Float32Array): void {
  const rowIn = w * c;
  const rowOut = w * f * c;
  const planeOut = h * f * rowOut;
  for (let nd = 0; nd < n * d; nd++) {
    const planeStart = nd * f * planeOut;
    for (let hh = 0; hh < h; hh++) {
      const src = (nd * h + hh) * rowIn;
      const dst = planeStart + hh * f * rowOut;
      let o = dst;
      for (let ww = 0; ww < w; ww++) {
        const s = src + ww * c;
        for (let k = 0; k < f; k++) for (let cc = 0; cc < c; cc++) out[o++] = x[s + cc];
      }
      for (let b = 1; b < f; b++) out.copyWithin(dst + b * rowOut, dst, dst + rowOut);
    }
    for (let a = 1; a < f; a++) out.copyWithin(planeStart + a * planeOut, planeStart, planeStart + planeOut);
  }
}

/** dx[n,d,h,w,c] = sum of dy over the f^3 block it was copied to. */
function upsampleGradRaw(dy: Float32Array, [n, df, hf, wf, c]: number[], f: number, dx: Float32Array): void {
  const h = hf / f;
  const w = wf / f;
  const rowIn = w * c;
  const rowOut = wf * c;
  dx.fill(0);
  for (let nd = 0; nd < (n * df) / f; nd++) {
    for (let a = 0; a < f; a++) {
      for (let hh = 0; hh < h; hh++) {
        const dst = (nd * h + hh) * rowIn;
        for (let b = 0; b < f; b++) {
          let s = ((nd * f + a) * hf + hh * f + b) * rowOut;
          for (let ww = 0; ww < w; ww++) {
            const o = dst + ww * c;
            for (let k = 0; k < f; k++) for (let cc = 0; cc < c; cc++) dx[o + cc] += dy[s++];
          }
        }
      }
    }
  }
}

/** Registers the raw upsampling kernels on wasm/cpu (idempotent). */
export function registerUpsampleKernels(backendName: string): void {
  if ((backendName !== 'wasm' && backendName !== 'cpu') || tf.getKernel(UPSAMPLE, backendName)) return;
  registerRawKernel<{ x: TensorInfo }, { factor: number }>(UPSAMPLE, backendName, ({ x }, { factor: f }) => {
    const [n, d, h, w, c] = x.shape;
    return { inputs: [x], outShape: [n, d * f, h * f, w * f, c], compute: ([xv], o) => upsampleRaw(xv, x.shape, f, o) };
  });
  registerRawKernel<{ dy: TensorInfo }, { factor: number }>(UPSAMPLE_GRAD, backendName, ({ dy }, { factor: f }) => {
    const [n, df, hf, wf, c] = dy.shape;
    return { inputs: [dy], outShape: [n, df / f, hf / f, wf / f, c], compute: ([g], o) => upsampleGradRaw(g, dy.shape, f, o) };
  });
}
