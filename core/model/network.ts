import { FedSegError } from '../errors.js';
import { tf } from '../tf/backend.js';
import { checkTensorsMatch } from '../weights/codec.js';
import type { NamedTensor } from '../weights/types.js';
import { makeModelConfig, type ModelConfig } from './config.js';
import { initialWeights } from './init.js';
import { attentionCoefficients, attentionGate, convSameRelu, maxPool2, nearestUp, pointwise, transposeUp } from './layers.js';
import { parameterSpecs } from './parameters.js';
import { SeededRandom } from './random.js';

type T5 = tf.Tensor5D;

export interface ForwardOptions {
  /** Training mode: applies dropout. */
  training?: boolean;
  /** Seed for this call's dropout masks (training only), so a training run is reproducible. */
  seed?: number;
  /** Attention U-Net: receives each gate's coefficients [n, d, h, w, 1] (finest level last), for inspection. */
  onAttention?: (level: number, alpha: T5) => void;
}

/**
 * 3D U-Net / Attention U-Net as a pure function of a named parameter map of tf.Variables, so the
 * weights map 1:1 onto the model-file manifest (`parameterSpecs`). No tfjs-layers.
 */
export class SegmentationModel {
  readonly config: ModelConfig;
  private readonly params: Map<string, tf.Variable>;

  constructor(config: ModelConfig, weights: readonly NamedTensor[]) {
    this.config = makeModelConfig(config);
    checkTensorsMatch(this.config, weights);
    this.params = new Map(weights.map((w) => [w.name, tf.variable(tf.tensor(w.data, w.shape, 'float32'), true)]));
  }

  /** Trainable variables in manifest order. */
  get variables(): tf.Variable[] {
    return [...this.params.values()];
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`internal: parameter ${name} missing`);
    return v;
  }

  /** Class probabilities (softmax over the last axis) for x: [n, d, h, w, inChannels]. Caller owns tidy. */
  forward(x: tf.Tensor, options: ForwardOptions = {}): T5 {
    const logits = this.logits(x, options);
    const probabilities = tf.softmax(logits) as T5;
    releaser(options)(logits);
    return probabilities;
  }

  /** Unnormalised class scores (what the training loss takes, see core/train/loss.ts). Caller owns tidy. */
  logits(x: tf.Tensor, options: ForwardOptions = {}): T5 {
    this.checkInput(x);
    const { depth, dropout, arch, upsampling } = this.config;
    const rng = new SeededRandom(options.seed ?? 0);
    const release = releaser(options);
    // Two 3x3x3 conv + ReLU with dropout between them (fused into the second convolution); a decoder
    // block's input is concat([up, skip]).
    const block = (h: T5, prefix: string, level: number, skip?: T5): T5 => {
      const a = convSameRelu(h, this.p(`${prefix}.conv1.kernel`), this.p(`${prefix}.conv1.bias`), { skip });
      const inputDropout = options.training && dropout[level] > 0 ? { rate: dropout[level], seed: rng.seed() } : undefined;
      const out = convSameRelu(a, this.p(`${prefix}.conv2.kernel`), this.p(`${prefix}.conv2.bias`), { inputDropout });
      release(a);
      return out;
    };

    const skips: T5[] = [];
    let h = x as T5;
    for (let level = 0; level < depth; level++) {
      const input = h;
      h = block(input, `enc${level}`, level);
      if (input !== x) release(input);
      if (level < depth - 1) {
        skips.push(h);
        h = maxPool2(h);
      }
    }
    for (let level = depth - 2; level >= 0; level--) {
      const encoded = skips[level];
      let skip = encoded;
      if (arch === 'attention-unet') {
        const a = `att${level}`;
        const params = {
          theta: this.p(`${a}.theta.kernel`),
          phi: this.p(`${a}.phi.kernel`),
          phiBias: this.p(`${a}.phi.bias`),
          psi: this.p(`${a}.psi.kernel`),
          psiBias: this.p(`${a}.psi.bias`),
        };
        if (options.onAttention) options.onAttention(level, attentionCoefficients(skip, h, params));
        skip = attentionGate(skip, h, params);
      }
      const up = (upsampling === 'transpose' ? transposeUp : nearestUp)(h, this.p(`dec${level}.up.kernel`), this.p(`dec${level}.up.bias`));
      release(h);
      h = block(up, `dec${level}`, level, skip);
      for (const consumed of new Set([up, skip, encoded])) release(consumed);
    }
    const head = pointwise(h, this.p('head.kernel'));
    release(h);
    const logits = tf.add(head, this.p('head.bias')) as T5;
    release(head);
    return logits;
  }

  /** Inference-mode probabilities; intermediate tensors are released. */
  predict(x: tf.Tensor): T5 {
    return tf.tidy(() => this.forward(x, { training: false }));
  }

  /**
   * Copies of the current weights, in manifest order (what model files and the federation carry).
   * Asynchronous because a GPU backend (webgpu in Node) cannot read its buffers synchronously.
   */
  async getWeights(): Promise<NamedTensor[]> {
    return Promise.all([...this.params].map(async ([name, v]) => ({ name, shape: [...v.shape], data: new Float32Array(await v.data()) })));
  }

  /** Replaces every weight; the list must match this architecture's manifest exactly. */
  setWeights(weights: readonly NamedTensor[]): void {
    checkTensorsMatch(this.config, weights);
    for (const w of weights) {
      tf.tidy(() => this.p(w.name).assign(tf.tensor(w.data, w.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }

  private checkInput(x: tf.Tensor): void {
    const factor = 2 ** (this.config.depth - 1);
    const [, d, h, w, c] = x.shape;
    if (x.rank !== 5 || c !== this.config.inChannels || [d, h, w].some((s) => s % factor !== 0)) {
      throw new FedSegError(
        `model input must be [n, d, h, w, ${this.config.inChannels}] with d, h, w divisible by ${factor}; got [${x.shape}]`,
        { field: 'input' },
      );
    }
  }
}

/**
 * Inference (no dropout, no gradient being recorded): frees each activation as soon as its last
 * consumer has run, so a pass holds the widest level's working set instead of every activation until
 * the caller's tidy ends (at 128^3 that is most of a GB, and on a first inference every new page of
 * the heap costs a page fault). With a tape on, the activations belong to the backward pass: kept.
 */
function releaser(options: ForwardOptions): (t: tf.Tensor) => void {
  return options.training || tf.engine().isTapeOn() ? () => {} : (t) => t.dispose();
}

/** A model with fresh seeded He-uniform weights. */
export function createModel(config: ModelConfig, seed: number): SegmentationModel {
  return new SegmentationModel(config, initialWeights(config, seed));
}

/** Multiply-accumulate count of one forward pass per sample at the config's inputShape (for GFLOP/s reports). */
export function forwardMacs(config: ModelConfig): number {
  const voxels = config.inputShape.reduce((a, b) => a * b, 1);
  return parameterSpecs(config)
    .filter((spec) => spec.name.endsWith('.kernel'))
    .reduce((macs, { name, shape }) => {
      const level = Number(/^[a-z]+(\d+)/.exec(name)?.[1] ?? 0);
      // Transposed up-convolutions and attention gates run on the coarser grid (level + 1).
      const coarse = (name.includes('.up.') && config.upsampling === 'transpose') || name.startsWith('att');
      const gridVoxels = voxels / 8 ** (coarse ? level + 1 : level);
      return macs + shape.reduce((a, b) => a * b, 1) * gridVoxels;
    }, 0);
}
