/**
 * Functional building blocks of the 3D networks (NDHWC tensors). Every op used here has a gradient
 * on all TF.js backends: the transposed and the 2x2x2-stride-2 convolutions are 1x1x1 convolutions
 * around 3D depth-to-space shuffles (FedSeg kernels, core/tf/depth-to-space.ts), and nearest
 * upsampling is upsample3d with its own gradient.
 */
import { tf } from '../tf/backend.js';
import { checkpointed } from '../tf/checkpoint.js';
import type { DropoutSpec } from '../tf/dropout.js';
import { depthToSpace3d, spaceToDepth3d } from '../tf/depth-to-space.js';
import { conv3dBiasRelu, multiConv3dBiasRelu } from '../tf/fused-conv.js';
import { upsample3d } from '../tf/upsample.js';

type T5 = tf.Tensor5D;

/** 3x3x3 (or any odd k) 'same' convolution + bias. */
export function convSame(x: T5, kernel: tf.Tensor, bias: tf.Tensor): T5 {
  return tf.add(tf.conv3d(x, kernel as T5, 1, 'same'), bias);
}

/**
 * relu(convSame(x, kernel, bias)), or with a skip relu(convSame(concat([x, skip]), kernel, bias)), as one
 * fused op (core/tf/fused-conv.ts): a training step then keeps one full-size tensor per layer instead
 * of three, which is what lets the 128^3 U-Net step fit in 4 GB. The skip is never concatenated: the
 * kernel is split along its input channels instead, because TF.js's concat gradient (SplitV over the
 * channel axis) was the slowest kernel of a training step on cpu and wasm. `inputDropout` drops out x
 * inside the op (recomputed in the backward pass rather than kept).
 */
export function convSameRelu(x: T5, kernel: tf.Tensor, bias: tf.Tensor, options: { skip?: T5; inputDropout?: DropoutSpec } = {}): T5 {
  const { skip, inputDropout } = options;
  if (!skip) return conv3dBiasRelu(x, kernel as T5, bias as tf.Tensor1D, { inputDropout });
  if (inputDropout) throw new Error('convSameRelu: inputDropout with a skip is not supported');
  return multiConv3dBiasRelu([x, skip], splitKernelChannels(kernel, x.shape[4]), bias as tf.Tensor1D);
}

/** [kd, kh, kw, ca + cb, cout] -> the kernels for the first ca and the remaining input channels. */
function splitKernelChannels(kernel: tf.Tensor, ca: number): [T5, T5] {
  const [kd, kh, kw, cin, cout] = kernel.shape as number[];
  return [
    tf.slice(kernel, [0, 0, 0, 0, 0], [kd, kh, kw, ca, cout]) as T5,
    tf.slice(kernel, [0, 0, 0, ca, 0], [kd, kh, kw, cin - ca, cout]) as T5,
  ];
}

/**
 * 1x1x1 convolution + optional bias: kernel [1,1,1,cin,cout]. A plain GEMM over voxels, run as conv3d so
 * it goes through the registered conv kernels (FedSeg's native engine on wasm: its input and filter
 * gradients were 5x and 25x faster than the wasm backend's single-threaded transposed matMuls).
 */
export function pointwise(x: T5, kernel: tf.Tensor, bias?: tf.Tensor): T5 {
  const y = tf.conv3d(x, kernel as T5, 1, 'valid');
  return bias ? tf.add(y, bias) : y;
}

/**
 * Conv3DTranspose(kernel 2, stride 2) + bias, as Keras computes it: out[2i+a] = sum_c x[i,c] K[c,a,...].
 * One 1x1x1 convolution to 2*2*2*cout channels, then depth-to-space (core/tf/depth-to-space.ts). kernel: [cin, 2, 2, 2, cout].
 * Checkpointed: the matMul and shuffle outputs (two full-size tensors at the finest level) are
 * recomputed in the backward pass instead of being kept for it.
 */
export function transposeUp(x: T5, kernel: tf.Tensor, bias: tf.Tensor): T5 {
  return checkpointedTransposeUp([x, kernel, bias]);
}

const checkpointedTransposeUp = checkpointed(([x, kernel, bias]): T5 => {
  const [cin, , , , cout] = kernel.shape as number[];
  const y = pointwise(x as T5, tf.reshape(kernel, [1, 1, 1, cin, 8 * cout]));
  return tf.add(depthToSpace3d(y), bias);
});

/** 2x2x2 stride-2 'valid' convolution (no bias) as space-to-depth + a 1x1x1 convolution. kernel: [2,2,2,cin,cout]. */
export function strided2Conv(x: T5, kernel: tf.Tensor): T5 {
  const cin = x.shape[4];
  const cout = kernel.shape[4] as number;
  // Each voxel's 8 * cin channels hold one 2x2x2 block in kernel order.
  return pointwise(spaceToDepth3d(x), tf.reshape(kernel, [1, 1, 1, 8 * cin, cout]));
}

/** Nearest-neighbour x2 upsampling followed by a 'same' convolution. */
export function nearestUp(x: T5, kernel: tf.Tensor, bias: tf.Tensor): T5 {
  return convSame(upsample3d(x, 2), kernel, bias);
}

export interface AttentionParams {
  theta: tf.Tensor;
  phi: tf.Tensor;
  phiBias: tf.Tensor;
  psi: tf.Tensor;
  psiBias: tf.Tensor;
}

/**
 * Additive attention gate (Oktay et al. 2018): alpha = sigmoid(psi(relu(theta(x) + phi(g)))), computed
 * on the gating signal's coarser grid and upsampled to x's grid (attentionCoefficients); the gated skip
 * is x * alpha in every channel. Checkpointed: the space-to-depth copy of x that theta reads (a
 * full-size tensor at the finest level) is recomputed in the backward pass instead of kept.
 */
export function attentionGate(x: T5, g: T5, p: AttentionParams): T5 {
  return checkpointedGate([x, g, p.theta, p.phi, p.phiBias, p.psi, p.psiBias]);
}

const checkpointedGate = checkpointed(([x, g, theta, phi, phiBias, psi, psiBias]): T5 =>
  tf.mul(x, attentionCoefficients(x as T5, g as T5, { theta, phi, phiBias, psi, psiBias })));

/** The gate's coefficients alpha on x's grid, [n, d, h, w, 1] (for inspection). */
export function attentionCoefficients(x: T5, g: T5, p: AttentionParams): T5 {
  const joint = tf.relu(tf.add(strided2Conv(x, p.theta), pointwise(g, p.phi, p.phiBias))) as T5;
  const coarseAlpha = tf.sigmoid(pointwise(joint, p.psi, p.psiBias));
  return upsample3d(coarseAlpha as T5, 2);
}

/** 2x2x2 max-pooling, stride 2. */
export function maxPool2(x: T5): T5 {
  return tf.maxPool3d(x, 2, 2, 'valid');
}
