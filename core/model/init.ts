import type { NamedTensor } from '../weights/types.js';
import type { ModelConfig } from './config.js';
import { parameterSpecs } from './parameters.js';
import { SeededRandom } from './random.js';

/**
 * Initial weights from a seed, as the original project's Keras model: He-uniform kernels
 * (limit sqrt(6 / fanIn)), zero biases. Pure, so the server can create the round-0 global model.
 */
export function initialWeights(config: ModelConfig, seed: number): NamedTensor[] {
  const rng = new SeededRandom(seed);
  return parameterSpecs(config).map(({ name, shape, fanIn }) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (fanIn > 0) {
      const limit = Math.sqrt(6 / fanIn);
      for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-limit, limit);
    }
    return { name, shape: [...shape], data };
  });
}
