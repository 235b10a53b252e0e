/**
 * Fused 3D convolution + bias + ReLU with its own gradient, to bound a training step's memory.
 *
 * Composed from stock ops, relu(conv3d(x, w) + b) leaves three full-size tensors per layer alive until
 * the step's backward pass (the conv output saved by Add, the sum saved by Relu, and the ReLU output),
 * which put the 128^3 U-Net step at 5.7 GB. Here the forward's temporaries are released as soon as the
 * op returns (customGrad runs its forward in a tidy) and the tape keeps only the inputs and y, which
 * are needed anyway: the ReLU mask is y > 0, because y > 0 exactly where the pre-activation is > 0.
 *
 * Several (input, kernel) pairs may share one bias: relu(sum_i conv3d(x_i, w_i) + b) is a convolution
 * over the channel concatenation of the x_i, without materialising it (see core/model/layers.ts).
 *
 * An input dropout (`inputDropout`, on a single input) is applied inside the op: the mask is a
 * function of its seed (core/tf/dropout.ts), so the dropped input is recomputed for the backward pass
 * instead of being kept beside the undropped one the previous layer keeps anyway.
 *
 * Every convolution runs through the registered kernels (Conv3D, Conv3DBackpropInputV2,
 * Conv3DBackpropFilterV2), i.e. FedSeg's fast engines from fast-conv.ts, as the stock conv3d gradient does.
 */
import { tf } from './backend.js';
import { applyDropoutMask, type DropoutSpec } from './dropout.js';

type T5 = tf.Tensor5D;
type Triple = [number, number, number];

export interface FusedConvOptions {
  /** Default 1. */
  strides?: number | Triple;
  /** Default 'same'. */
  pad?: 'same' | 'valid';
  /** Dropout applied to the (single) input before the convolution. */
  inputDropout?: DropoutSpec;
}

/** relu(conv3d(x, w, strides, pad) + b), NDHWC; w: [kd, kh, kw, cin, cout], b: [cout]. */
export function conv3dBiasRelu(x: T5, w: T5, b: tf.Tensor1D, options: FusedConvOptions = {}): T5 {
  return multiConv3dBiasRelu([x], [w], b, options);
}

/**
 * relu(sum_i conv3d(xs[i], ws[i]) + b): each x_i is [n, d, h, w, c_i] with the same n, d, h, w, and
 * w_i is [kd, kh, kw, c_i, cout] with the same kernel size and cout.
 */
export function multiConv3dBiasRelu(xs: readonly T5[], ws: readonly T5[], b: tf.Tensor1D, options: FusedConvOptions = {}): T5 {
  if (xs.length === 0 || xs.length !== ws.length) {
    throw new Error(`multiConv3dBiasRelu needs one kernel per input and at least one input; got ${xs.length} inputs, ${ws.length} kernels`);
  }
  const strides = options.strides ?? 1;
  const pad = options.pad ?? 'same';
  const count = xs.length;
  const dropout = options.inputDropout && options.inputDropout.rate > 0 ? options.inputDropout : undefined;
  if (dropout && count !== 1) throw new Error(`multiConv3dBiasRelu applies inputDropout to a single input, got ${count}`);
  // The convolution's actual input: the dropped-out x, a temporary (released by the caller's tidy).
  const convInput = (x: T5): T5 => (dropout ? (applyDropoutMask(x, dropout) as T5) : x);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const tensors = args.slice(0, -1) as tf.Tensor[];
    const inputs = tensors.slice(0, count) as T5[];
    const kernels = tensors.slice(count, 2 * count) as T5[];
    const bias = tensors[2 * count];
    let sum = tf.conv3d(convInput(inputs[0]), kernels[0], strides, pad);
    for (let i = 1; i < count; i++) sum = tf.add(sum, tf.conv3d(inputs[i], kernels[i], strides, pad));
    const y = tf.relu(tf.add(sum, bias)) as T5;
    save([...inputs, ...kernels, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // customGrad calls this outside any tidy, and TF.js 4.22 keeps every upstream gradient (dy)
        // until the whole backward pass ends: free the mask and g here, and dy once it is used (it is
        // only this op's, created by the backward pass; never pass a dy you still need to tf.grads
        // of a function that returns this op's output directly).
        const grads = tf.tidy(() => {
          const savedInputs = saved.slice(0, count) as T5[];
          const savedKernels = saved.slice(count, 2 * count) as T5[];
          const out = saved[2 * count];
          // ReLU's gradient, masked by its output (TF.js's Relu gradient uses step(x) on the input).
          const g = tf.mul(dy, tf.step(out)) as T5;
          // The filter gradients first, each recomputed dropped-out input freed at once, so that it and
          // the input gradient are never alive together (at the top level that is one 134 MB tensor less
          // at the backward pass's peak).
          const dws = savedInputs.map((x, i) => {
            const input = convInput(x);
            const dw = backpropFilter(input, g, savedKernels[i].shape, strides, pad);
            if (input !== x) input.dispose();
            return dw;
          });
          // Dropout is linear with a fixed mask: its gradient is the same mask on the input gradient
          // (the unmasked one freed at once, as above).
          const dxs = savedInputs.map((x, i) => {
            const dx = tf.conv3dTranspose(g, savedKernels[i], x.shape, strides, pad);
            if (!dropout) return dx;
            const masked = applyDropoutMask(dx, dropout);
            dx.dispose();
            return masked;
          });
          const db = tf.sum(tf.reshape(g, [-1, g.shape[4]]), 0);
          return [...dxs, ...dws, db];
        });
        dy.dispose();
        return grads;
      },
    };
  });
  return op(...xs, ...ws, b) as T5;
}

/** dL/dw of conv3d(x, w) given dy, through the registered Conv3DBackpropFilterV2 kernel (no public op in 4.22). */
function backpropFilter(x: T5, dy: T5, filterShape: number[], strides: number | Triple, pad: 'same' | 'valid'): tf.Tensor {
  return tf.engine().runKernel(tf.Conv3DBackpropFilterV2, { x, dy }, {
    strides,
    pad,
    filterShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}
