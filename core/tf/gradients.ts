/**
 * Gradients TF.js 4.22 lacks and FedSeg's models need. Gradients are global (not per backend), so
 * they are registered once whichever backend runs.
 */
import * as tf from '@tensorflow/tfjs-core';

let registered = false;

type Conv3DTransposeAttrs = {
  strides: [number, number, number] | number;
  pad: 'valid' | 'same';
  inputShape: [number, number, number, number, number];
};

/**
 * Makes `tf.conv3dTranspose` trainable. Its kernel computes y = B(dy, W), the adjoint of the forward
 * convolution C(x, W) in x: <B(dy, W), g> = <dy, C(g, W)> for every g. Differentiating that identity
 * gives, for the upstream gradient g of y:
 *   d/d(dy) = C(g, W)                       -> conv3d(g, W) with the same strides/padding;
 *   d/dW    = d/dW <dy, C(g, W)>            -> Conv3DBackpropFilterV2 with input g and output-gradient dy.
 */
const conv3DBackpropInputGrad: tf.GradConfig = {
  kernelName: tf.Conv3DBackpropInputV2,
  inputsToSave: ['dy', 'filter'],
  gradFunc: (g: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const { strides, pad } = attrs as unknown as Conv3DTransposeAttrs;
    const [dy, filter] = saved as [tf.Tensor5D, tf.Tensor5D];
    const upstream = g as tf.Tensor5D;
    return {
      dy: () => tf.conv3d(upstream, filter, strides, pad),
      filter: () =>
        tf.engine().runKernel(tf.Conv3DBackpropFilterV2, { x: upstream, dy }, {
          strides,
          pad,
          filterShape: filter.shape,
        }) as tf.Tensor5D,
    };
  },
};

/** Registers FedSeg's gradients once per process (registering twice would only warn, but stay clean). */
export function registerFedSegGradients(): void {
  if (registered) return;
  registered = true;
  if (!tf.getGradient(tf.Conv3DBackpropInputV2)) tf.registerGradient(conv3DBackpropInputGrad);
}
