import { attentionInterChannels, levelFilters, type ModelConfig } from './config.js';

/** One trainable tensor of the network, in the order it is stored in a model file. */
export interface ParameterSpec {
  name: string;
  shape: number[];
  /** Inputs feeding one output unit, for He initialisation; 0 for biases. */
  fanIn: number;
}

function conv(name: string, kernel: number, cin: number, cout: number, bias = true): ParameterSpec[] {
  const specs: ParameterSpec[] = [{ name: `${name}.kernel`, shape: [kernel, kernel, kernel, cin, cout], fanIn: kernel ** 3 * cin }];
  if (bias) specs.push({ name: `${name}.bias`, shape: [cout], fanIn: 0 });
  return specs;
}

/**
 * The ordered parameter manifest of an architecture, computed without TensorFlow so the server
 * can validate and initialise models with no tfjs. The model code creates exactly these tensors.
 *
 * Naming: enc{l}.conv{1,2}, dec{l}.up, dec{l}.conv{1,2}, att{l}.{theta,phi,psi}, head; level 0 is
 * full resolution, level depth-1 the bottleneck (encoded with the `enc` prefix).
 */
export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const filters = levelFilters(config);
  const specs: ParameterSpec[] = [];
  filters.forEach((f, level) => {
    const cin = level === 0 ? config.inChannels : filters[level - 1];
    specs.push(...conv(`enc${level}.conv1`, 3, cin, f), ...conv(`enc${level}.conv2`, 3, f, f));
  });
  for (let level = config.depth - 2; level >= 0; level--) {
    const f = filters[level];
    const coarse = filters[level + 1];
    if (config.arch === 'attention-unet') {
      const inter = attentionInterChannels(f);
      specs.push(
        // theta_x: 2x2x2 stride-2 convolution bringing the skip to the gating signal's grid.
        ...conv(`att${level}.theta`, 2, f, inter, false),
        ...conv(`att${level}.phi`, 1, coarse, inter),
        ...conv(`att${level}.psi`, 1, inter, 1),
      );
    }
    if (config.upsampling === 'transpose') {
      // Conv3DTranspose(kernel 2, stride 2): [cin, kd, kh, kw, cout] so it reshapes to a matMul operand.
      specs.push(
        { name: `dec${level}.up.kernel`, shape: [coarse, 2, 2, 2, f], fanIn: coarse },
        { name: `dec${level}.up.bias`, shape: [f], fanIn: 0 },
      );
    } else {
      specs.push(...conv(`dec${level}.up`, 3, coarse, f));
    }
    specs.push(...conv(`dec${level}.conv1`, 3, 2 * f, f), ...conv(`dec${level}.conv2`, 3, f, f));
  }
  specs.push(...conv('head', 1, filters[0], config.numClasses));
  return specs;
}

export function parameterCount(config: ModelConfig): number {
  return parameterSpecs(config).reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
}
