/**
 * Gradient checkpointing for a differentiable function of tensors: the forward pass keeps only the
 * inputs (its temporaries are released when it returns), and the backward pass recomputes them to
 * differentiate. For parts of a training step whose temporaries are large and cheap to recompute: the
 * transposed-convolution upsampling and the loss, which at 128^3 kept about 0.8 GB of the wasm
 * backend's 4 GB heap alive until the backward pass, for a few elementwise ops and one matMul.
 *
 * Every tensor the function reads must be passed in, as an input (differentiated; variables
 * included) or a constant: a tensor it only closed over might be released before the backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';

interface EngineTapeState {
  state: { activeTape: unknown };
}

/**
 * fn(inputs, constants) with checkpointing. `inputs` are differentiated; `constants` (labels, say) are
 * kept alive for the recomputation and get zero gradients.
 */
export function checkpointed<T extends tf.Tensor>(
  fn: (inputs: tf.Tensor[], constants: tf.Tensor[]) => T,
): (inputs: tf.Tensor[], constants?: tf.Tensor[]) => T {
  return (inputs, constants = []) =>
    tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const save = args[args.length - 1] as tf.GradSaveFunc;
      const all = args.slice(0, -1) as tf.Tensor[];
      save(all);
      const count = inputs.length;
      return {
        value: tf.tidy(() => fn(all.slice(0, count), all.slice(count))),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const grads = recomputeGradients((xs) => fn(xs, saved.slice(count)), saved.slice(0, count), dy);
          // Free dy once used, as core/tf/fused-conv.ts explains (TF.js keeps it to the end otherwise).
          dy.dispose();
          return [...grads, ...saved.slice(count).map((c) => tf.zerosLike(c))];
        },
      };
    })(...inputs, ...constants) as T;
}

/**
 * d(fn)/d(inputs) . dy by recomputing fn under a fresh tape. TF.js runs a custom gradient while the
 * outer backward pass still needs its own tape (it releases the saved tensors from it at the end), and
 * a nested tf.grads at tape depth 0 would replace that tape and then clear it: keep and restore it.
 */
function recomputeGradients(fn: (inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  const engine = tf.engine() as unknown as EngineTapeState;
  const outerTape = engine.state.activeTape;
  try {
    return tf.grads((...xs: tf.Tensor[]) => fn(xs))(inputs, dy);
  } finally {
    engine.state.activeTape = outerTape;
  }
}
