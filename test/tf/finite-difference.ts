/**
 * Central finite differences for checking custom gradients in float32 TF.js.
 *
 * The probe loss is L(inputs) = sum_i r_i * f(inputs)_i with fixed random weights r, summed in float64
 * in JS. Every op checked here is linear in each single input (conv, conv-transpose, upsampling) or
 * piecewise linear (max-pool, relu) or smooth with small curvature (sigmoid), so the central difference
 * (L(x+e) - L(x-e)) / 2e has no (linear) or O(e^2 * f''') truncation error, and what remains is float32
 * rounding of f: about 6e-8 * |f| * sqrt(terms) / e per probe. With e = 1e-2 and O(1) values that is
 * ~1e-5 absolute, so a tolerance of 1e-3 (relative to the gradient's max magnitude) leaves 100x margin
 * while any real mistake (wrong axis, missing term, transposed filter) shows up as O(1) error.
 */
import { tf } from '../../core/tf/backend.js';

export interface GradientCheck {
  /** max |analytic - numeric| over every checked element, divided by max |analytic|. */
  relativeError: number;
  /** Elements compared. */
  checked: number;
}

async function probeLoss(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], weights: Float64Array): Promise<number> {
  const y = tf.tidy(() => f(...inputs));
  const values = await y.data();
  y.dispose();
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += weights[i] * values[i];
  return sum;
}

/** Asynchronous because it reads tensors with data(), which every backend (webgpu too) supports. */
export async function checkGradients(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  opts: { epsilon?: number; seed?: number } = {},
): Promise<GradientCheck> {
  const epsilon = opts.epsilon ?? 1e-2;
  const outShape = tf.tidy(() => f(...inputs).shape);
  const size = outShape.reduce((a, b) => a * b, 1);
  let state = opts.seed ?? 12345;
  const weights = new Float64Array(size).map(() => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 1073741824 - 1;
  });
  const r = tf.tensor(Float32Array.from(weights), outShape);
  const gradients = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)))(inputs);
  const analytic = await Promise.all(gradients.map((g) => g.data()));
  tf.dispose([r, ...gradients]);

  let maxError = 0;
  let maxMagnitude = 0;
  let checked = 0;
  for (const [k, input] of inputs.entries()) {
    const base = Float32Array.from(await input.data());
    for (let j = 0; j < base.length; j++) {
      const probe = async (delta: number): Promise<number> => {
        const values = base.slice();
        values[j] += delta;
        const moved = tf.tensor(values, input.shape);
        const args = inputs.map((x, i) => (i === k ? moved : x));
        const loss = await probeLoss(f, args, weights);
        moved.dispose();
        return loss;
      };
      // The perturbation actually applied in float32, so the quotient uses the exact step.
      const up = Math.fround(base[j] + epsilon) - base[j];
      const down = base[j] - Math.fround(base[j] - epsilon);
      const numeric = ((await probe(up)) - (await probe(-down))) / (up + down);
      maxError = Math.max(maxError, Math.abs(numeric - analytic[k][j]));
      maxMagnitude = Math.max(maxMagnitude, Math.abs(analytic[k][j]));
      checked++;
    }
  }
  return { relativeError: maxError / Math.max(maxMagnitude, 1e-12), checked };
}
