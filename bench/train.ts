/**
 * `fedseg bench train`: TF.js training steps against PyTorch on the same network, alternating one step
 * of each so both see the same machine load. PyTorch runs bench/torch_unet.py in the first Python that
 * imports torch (Debian's python3-torch in /usr/bin/python3 here) with as many threads as FedSeg's
 * native pool (FEDSEG_THREADS, else every core).
 *
 * 1. The issue-6 U-Net (64^3 x 3 channels, levels 16/32/64, two 3x3x3 conv + ReLU per level, max-pool,
 *    nearest upsampling + 3x3x3 conv, concatenated skips, 1x1x1 head to 4 classes, softmax
 *    cross-entropy, batch 1, Adam), in this process: medians, ratio, GFLOP/s, this CPU's rough peak.
 * 2. Full mode: the seed-sized step ("big"): the product's model at 128^3 (makeModelConfig defaults:
 *    U-Net 16..256 filters, 5 levels, 3 channels, transposed-conv up, dropout 0.1/0.1/0.2/0.2/0.3)
 *    trained through core/train's trainLocal exactly as a site does with the seed preset (Dice +
 *    focal, Adam 1e-4, patch sampling and augmentation from a synthetic preprocessed case), batch 1,
 *    in a child process, against torch_unet.py with the identical architecture, dropout, loss and
 *    Adam settings in another. Each child reports its own peak RSS; a FedSeg step that runs out of
 *    memory (the wasm heap is at most 4 GiB) is reported as "did not fit", PyTorch's steps still run.
 *    A FedSeg step is timed from handing the trainer its case to the trainer's step event, so it
 *    includes the patch sampling the product does; PyTorch's is the forward/backward/Adam on a fixed
 *    batch.
 *
 * FLOPs are counted analytically from the convolutions only: forward = 2 x multiply-adds
 * (core/model forwardMacs), a training step = 3 x forward (forward + backprop-input + backprop-filter).
 *
 * On webgpu (`--backend webgpu`) the table adds the adapter and the GPU memory TF.js holds after the
 * steps; `--torch-device cuda` runs the PyTorch side on the GPU (fp32 without TF32, cuDNN), which is
 * what scripts/gpu-check.sh compares on an NVIDIA machine, at `--size 64` and `--size 128`.
 *
 * Run alone: node --import tsx bench/train.ts [--quick] [--steps N] [--backend NAME] [--size S] [--no-torch]
 *                                             [--torch-device cpu|cuda] [--no-big] [--big-size S] [--big-steps N]
 *            node --import tsx bench/train.ts --big [--big-size S] ...   (only the seed-sized comparison,
 *            one JSON line; --big-size 32 checks the harness in a minute)
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { errorMessage } from '../core/errors.js';
import { forwardMacs, createModel } from '../core/model/network.js';
import { makeModelConfig, type ModelConfig } from '../core/model/config.js';
import type { SeededRandom } from '../core/model/random.js';
import { preprocessCase, preprocessConfig } from '../core/preprocess/index.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { generateCase, siteProfile } from '../core/synth/index.js';
import { initBackend, describeBackend, tf, type BackendPreference } from '../core/tf/backend.js';
import { installNativeKernels, nativeThreadCount } from '../core/tf/native-engine.js';
import { CaseStore, type TrainingCase } from '../core/train/data.js';
import { trainLocal } from '../core/train/trainer.js';

export interface TrainBenchOptions {
  quick?: boolean;
  /** Timed steps of each framework (at least 5 in full mode). */
  steps?: number;
  backend?: BackendPreference;
  /** Skip the PyTorch side even if torch is installed. */
  noTorch?: boolean;
  /** Also run the seed-sized comparison (default: in full mode). */
  big?: boolean;
  /** Input edge of the seed-sized comparison (default 128; smaller only to check the harness). */
  bigSize?: number;
  /** Timed steps of each framework in the seed-sized comparison (default 3). */
  bigSteps?: number;
  /** Input edge of the benchmark network (default 64). */
  size?: number;
  /** Where PyTorch runs (default cpu, with FedSeg's native thread count). */
  torchDevice?: 'cpu' | 'cuda';
}

/** The seed-sized comparison; every time in seconds, memory in MiB. */
export interface BigComparison {
  config: string;
  backend: string;
  /** 'ok', or why FedSeg's steps stopped ("did not fit: ..." when a step ran out of memory). */
  tfjs: string;
  tfjsMedianS: number | null;
  tfjsStepsS: number[];
  torch: string;
  torchMedianS: number | null;
  torchStepsS: number[];
  ratio: number | null;
  /** Peak RSS of each framework's own process (up to a failure, for one that failed). */
  tfjsPeakRssMiB: number | null;
  torchPeakRssMiB: number | null;
  gflopPerStep: number;
  tfjsGflops: number | null;
  torchGflops: number | null;
  threads: number;
  /** GPU memory TF.js's webgpu backend holds after the steps (its buffer pool keeps the peak); null elsewhere. */
  gpuMiB: number | null;
  loadAverage: number[];
}

export interface TrainBenchResult {
  table: string;
  json: {
    backend: string;
    nativeKernels: string[];
    steps: number;
    tfjsMedianS: number;
    tfjsStepsS: number[];
    torchMedianS: number | null;
    torchStepsS: number[];
    torch: string;
    torchDevice: 'cpu' | 'cuda';
    size: number;
    gpuMiB: number | null;
    ratio: number | null;
    gflopPerStep: number;
    tfjsGflops: number;
    torchGflops: number | null;
    peakGflops: { avx2: number; avx512: number | null; ghz: number; cores: number };
    noise: { tfjsSpreadPct: number; torchSpreadPct: number | null; loadAverage: number[] };
    big: BigComparison | null;
  };
}

/** The issue-6 benchmark network (64^3 unless another edge is given). */
export function benchConfig(size = 64): ModelConfig {
  return makeModelConfig({
    arch: 'unet',
    inputShape: [size, size, size],
    inChannels: 3,
    numClasses: 4,
    baseFilters: 16,
    depth: 3,
    dropout: [0, 0, 0],
    upsampling: 'nearest',
  });
}

/** The product's model as the seed preset trains it: defaults (5 levels 16..256, transposed-conv up, the original dropout) at size^3. */
export function seedConfig(size = 128): ModelConfig {
  return makeModelConfig({ inputShape: [size, size, size] });
}

/** The seed preset's trainer settings (demo/options.ts SEED_PRESET, core/train defaults), at batch 1. */
const SEED_TRAINING = { learningRate: 1e-4, adamEpsilon: 1e-7, batchSize: 1 } as const;

/** Training FLOPs of one step: 3 x forward, forward = 2 x multiply-adds of every convolution. */
export function trainingFlops(config: ModelConfig): number {
  return 3 * 2 * forwardMacs(config);
}

type Stepper = { step(): Promise<number>; dispose(): void };

/** GPU memory held by the webgpu backend's buffer pool, in MiB; null on other backends. */
function gpuMiB(): number | null {
  const bytes = (tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU;
  return tf.getBackend() === 'webgpu' && bytes !== undefined ? Math.round(bytes / 2 ** 20) : null;
}

/**
 * One model + Adam + fixed random batch; step() runs a training step and returns its seconds. Reading
 * the loss back (asynchronously: webgpu cannot read synchronously) waits for the whole step.
 */
function makeTfjsStepper(config: ModelConfig): Stepper {
  const model = createModel(config, 1);
  const optimizer = tf.train.adam(1e-3);
  const [d, h, w] = config.inputShape;
  const x = tf.randomUniform([1, d, h, w, config.inChannels], 0, 1, 'float32', 3);
  const labels = tf.randomUniform([1, d, h, w], 0, config.numClasses, 'int32', 4);
  const onehot = tf.cast(tf.oneHot(labels, config.numClasses), 'float32') as tf.Tensor5D;
  labels.dispose();
  return {
    async step() {
      const started = performance.now();
      const loss = optimizer.minimize(
        () => {
          const probs = model.forward(x, { training: true });
          return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.log(tf.add(probs, 1e-7))), -1))) as tf.Scalar;
        },
        true,
        model.variables,
      );
      await loss?.data(); // waits for the step to finish
      loss?.dispose();
      return (performance.now() - started) / 1000;
    },
    dispose() {
      model.dispose();
      optimizer.dispose();
      x.dispose();
      onehot.dispose();
    },
  };
}

/** First Python that imports torch: $FEDSEG_TORCH_PYTHON, Debian's /usr/bin/python3, then PATH. */
export function findTorchPython(): string | undefined {
  const candidates = [process.env.FEDSEG_TORCH_PYTHON, '/usr/bin/python3', 'python3', 'python'].filter((c): c is string => !!c);
  return candidates.find((py) => spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 }).status === 0);
}

/** A step that failed, with the child's peak RSS up to the failure when it said. */
class StepFailure extends Error {
  constructor(message: string, readonly peakRssMiB: number | null) {
    super(message);
  }
}

/** One step as a child reports it: "step <seconds> <peak RSS MiB> [<GPU MiB>]". */
interface ChildStep {
  seconds: number;
  peakRssMiB: number;
  gpuMiB: number | null;
}

/**
 * A child process that takes one training step per 'step' line on stdin: it prints 'ready <info>' once
 * set up, then one 'step ...' line per step, or 'error <message>' (and exits) when a step fails.
 */
class StepProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly queue: string[] = [];
  private waiter: ((line: string) => void) | undefined;
  private stderr = '';
  private closed = false;

  constructor(readonly label: string, command: string, args: readonly string[]) {
    // Same niceness as this process (run the whole benchmark under `nice` on a shared machine).
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    this.child.stdin.on('error', () => {}); // a child that died is reported by next()
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(line);
      } else this.queue.push(line);
    });
    this.child.on('close', (code, signal) => {
      this.closed = true;
      this.waiter?.(`exit ${code ?? signal}: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      this.waiter = undefined;
    });
  }

  private next(): Promise<string> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.closed) return Promise.resolve(`exit: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** The next protocol line ('ready', 'step', 'error' or the exit notice), skipping anything else the child prints. */
  private async nextReply(): Promise<string> {
    for (;;) {
      const line = await this.next();
      if (/^(ready|step|error|exit)\b/.test(line)) return line;
    }
  }

  async ready(): Promise<string> {
    const line = await this.nextReply();
    if (!line.startsWith('ready ')) throw new Error(`${this.label} failed to start: ${line}`);
    return line.slice('ready '.length);
  }

  async step(): Promise<ChildStep> {
    if (!this.closed) this.child.stdin.write('step\n');
    const line = await this.nextReply();
    const m = /^step (\S+) (\d+)(?: (\d+|null))?$/.exec(line);
    if (!m) {
      const failed = /^error (\d+) (.*)$/.exec(line);
      throw failed ? new StepFailure(failed[2], Number(failed[1])) : new StepFailure(line, null);
    }
    return { seconds: Number(m[1]), peakRssMiB: Number(m[2]), gpuMiB: m[3] === undefined || m[3] === 'null' ? null : Number(m[3]) };
  }

  close(): void {
    if (!this.closed) this.child.stdin.end('quit\n');
  }
}

function torchScript(): string {
  return fileURLToPath(new URL('./torch_unet.py', import.meta.url));
}

/** Rough fp32 peak: cores x GHz x FLOP/cycle (AVX2: 2 FMA x 8 lanes x 2 = 32; AVX-512 with 2 FMA units: 64). */
export function cpuPeak(): { avx2: number; avx512: number | null; ghz: number; cores: number } {
  const cores = cpus().length;
  let ghz = (cpus()[0]?.speed ?? 0) / 1000;
  let avx512 = false;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    avx512 = /\bavx512f\b/.test(info);
    const mhz = /cpu MHz\s*:\s*([\d.]+)/i.exec(info);
    const bogo = /bogomips\s*:\s*([\d.]+)/i.exec(info);
    // Under a hypervisor os.cpus() may say 0 MHz; then the nominal "cpu MHz", else BogoMIPS / 2.
    if (!ghz && mhz) ghz = Number(mhz[1]) / 1000;
    if (!ghz && bogo) ghz = Number(bogo[1]) / 2000;
  } catch {
    // not Linux: keep the os.cpus() figure
  }
  const round = (v: number) => Math.round(v);
  return { avx2: round(cores * ghz * 32), avx512: avx512 ? round(cores * ghz * 64) : null, ghz: Math.round(ghz * 100) / 100, cores };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** (max - min) / median in percent: how noisy the shared machine was during the run. */
function spreadPct(values: number[]): number {
  return Math.round(((Math.max(...values) - Math.min(...values)) / median(values)) * 100);
}

function describeConfig(c: ModelConfig): string {
  return `${c.arch} ${c.inputShape.join('x')}x${c.inChannels} levels ${c.depth} base ${c.baseFilters} ${c.upsampling}`;
}

/** A synthetic case through the real preprocessing: the 128^3 crop the trainer samples patches from. */
async function syntheticTrainingCase(): Promise<TrainingCase> {
  const raw = generateCase(1, siteProfile(1, 1), 0);
  const item = await preprocessCase({
    caseId: 'bench', loadModality: (m) => ({ dims: raw.dims, data: raw.modalities[m], affine: raw.affine }),
    loadMask: () => ({ dims: raw.dims, data: raw.seg, affine: raw.affine }),
  }, preprocessConfig());
  return { caseId: 'bench', image: item.image, classes: item.classes! };
}

/** One case repeated, each handed to the trainer only when `gate` allows (the parent's 'step' line). */
class PacedStore extends CaseStore {
  constructor(item: TrainingCase, steps: number, private readonly gate: () => Promise<boolean>) {
    super(Array.from({ length: steps }, () => item));
  }

  override async *pass(_rng: SeededRandom): AsyncGenerator<TrainingCase> {
    for (const item of this.cached) {
      if (!(await this.gate())) return;
      yield item;
    }
  }
}

/** Memory the failure of a step means: wasm's heap (at most 4 GiB) or the process's ran out. */
const OUT_OF_MEMORY = /out of memory|\bOOM\b|Aborted\(|Cannot enlarge memory|allocation failed|Array buffer allocation|memory access out of bounds|heap limit/i;

/**
 * Child side of the seed-sized comparison (`--trainer-child`): trainLocal with the seed preset's
 * settings on a synthetic case, one step per 'step' line from the parent, each reported with the
 * process's peak RSS so far.
 */
async function trainerChild(size: number, steps: number, backend: BackendPreference | undefined): Promise<void> {
  const info = await initBackend(backend);
  const config = seedConfig(size);
  const item = await syntheticTrainingCase();
  const commands = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  let handedOut = 0;
  const store = new PacedStore(item, steps, async () => {
    const next = await commands.next();
    handedOut = performance.now();
    return !next.done && next.value === 'step';
  });
  const model = createModel(config, 1);
  console.log(`ready ${JSON.stringify({ backend: info.detail })}`);
  try {
    await trainLocal({
      model, data: store, epochs: 1, batchSize: SEED_TRAINING.batchSize, learningRate: SEED_TRAINING.learningRate, seed: 1,
      onProgress: (e) => {
        if (e.type !== 'step') return;
        const seconds = (performance.now() - handedOut) / 1000;
        console.log(`step ${seconds.toFixed(6)} ${Math.round(process.resourceUsage().maxRSS / 1024)} ${gpuMiB() ?? 'null'}`);
      },
    });
  } catch (err) {
    console.log(`error ${Math.round(process.resourceUsage().maxRSS / 1024)} ${errorMessage(err).replace(/\s+/g, ' ')}`);
    process.exitCode = 1;
  } finally {
    model.dispose();
  }
}

export interface BigComparisonOptions {
  size?: number;
  steps?: number;
  backend?: BackendPreference;
  python?: string;
  torchDevice?: 'cpu' | 'cuda';
}

/** The seed-sized step, FedSeg (child process, core/train) and PyTorch (child process) alternating. */
export async function runBigComparison(options: BigComparisonOptions = {}): Promise<BigComparison> {
  const size = options.size ?? 128;
  const steps = Math.max(options.steps ?? 3, 1);
  const threads = nativeThreadCount();
  const config = seedConfig(size);
  const flop = trainingFlops(config);
  const backendArgs = options.backend ? ['--backend', options.backend] : [];
  // One untimed warm-up step each (kernel set-up, first-use allocations, JIT).
  const tfjs = new StepProcess('FedSeg trainer', process.execPath,
    nodeArgs(new URL(import.meta.url), ['--trainer-child', '--big-size', String(size), '--big-steps', String(steps + 1), ...backendArgs]));
  const torch = options.python ? new StepProcess('PyTorch', options.python, [torchScript(), '--size', String(size), '--depth', String(config.depth),
    '--base', String(config.baseFilters), '--in-channels', String(config.inChannels), '--classes', String(config.numClasses),
    '--dropout', config.dropout.join(','), '--upsampling', config.upsampling, '--loss', 'dice-focal',
    '--lr', String(SEED_TRAINING.learningRate), '--eps', String(SEED_TRAINING.adamEpsilon), '--warmup', '1',
    '--threads', String(threads), '--device', options.torchDevice ?? 'cpu']) : undefined;
  let tfjsStatus = 'ok';
  let torchStatus = options.python ?? 'not run (--no-torch, or no python that imports torch: FEDSEG_TORCH_PYTHON names one)';
  let backend: string = options.backend ?? 'auto';
  const tfjsSteps: ChildStep[] = [];
  const torchSteps: ChildStep[] = [];
  let tfjsFailedRssMiB: number | null = null;
  const fail = (err: unknown) => {
    if (err instanceof StepFailure && err.peakRssMiB !== null) tfjsFailedRssMiB = err.peakRssMiB;
    const message = errorMessage(err);
    return OUT_OF_MEMORY.test(message) ? `did not fit: ${message}` : `failed: ${message}`;
  };
  const tfjsStep = async (keep: boolean) => {
    if (tfjsStatus !== 'ok') return;
    try {
      const step = await tfjs.step();
      if (keep) tfjsSteps.push(step);
    } catch (err) {
      tfjsStatus = fail(err);
    }
  };
  const torchStep = async () => {
    if (!torch || torchSteps.length === steps) return;
    try {
      torchSteps.push(await torch.step());
    } catch (err) {
      torchStatus = `failed: ${errorMessage(err)}`;
    }
  };
  try {
    const [tfjsReady, torchReady] = await Promise.allSettled([tfjs.ready(), torch?.ready()]);
    if (tfjsReady.status === 'rejected') tfjsStatus = fail(tfjsReady.reason);
    // The backend's detail minus its list of GPU backends it did not find.
    else backend = (JSON.parse(tfjsReady.value) as { backend: string }).backend.split('; no GPU')[0];
    if (torchReady.status === 'rejected') torchStatus = `failed: ${errorMessage(torchReady.reason)}`;
    else if (torchReady.value) torchStatus = `${options.python}: ${torchReady.value}`;
    await tfjsStep(false);
    for (let i = 0; i < steps; i++) {
      await tfjsStep(true);
      if (!torchStatus.startsWith('failed')) await torchStep();
    }
  } finally {
    tfjs.close();
    torch?.close();
  }
  const medianOf = (list: ChildStep[]) => (list.length ? median(list.map((s) => s.seconds)) : null);
  const tfjsMedian = tfjsStatus === 'ok' ? medianOf(tfjsSteps) : null;
  const torchMedian = medianOf(torchSteps);
  const peakOf = (list: ChildStep[], failedAt: number | null = null) =>
    (list.length || failedAt !== null ? Math.max(...list.map((s) => s.peakRssMiB), failedAt ?? 0) : null);
  const r3 = (v: number) => Math.round(v * 1000) / 1000;
  const gflops = (m: number | null) => (m === null ? null : Math.round(flop / m / 1e9 * 10) / 10);
  return {
    config: describeConfig(config) + `, dropout ${config.dropout.join('/')}, Dice + focal, Adam ${SEED_TRAINING.learningRate}, batch ${SEED_TRAINING.batchSize}`,
    backend,
    tfjs: tfjsStatus,
    tfjsMedianS: tfjsMedian === null ? null : r3(tfjsMedian),
    tfjsStepsS: tfjsSteps.map((s) => r3(s.seconds)),
    torch: torchStatus,
    torchMedianS: torchMedian === null ? null : r3(torchMedian),
    torchStepsS: torchSteps.map((s) => r3(s.seconds)),
    ratio: tfjsMedian !== null && torchMedian ? r3(tfjsMedian / torchMedian) : null,
    tfjsPeakRssMiB: peakOf(tfjsSteps, tfjsFailedRssMiB),
    torchPeakRssMiB: peakOf(torchSteps),
    gflopPerStep: Math.round(flop / 1e8) / 10,
    tfjsGflops: gflops(tfjsMedian),
    torchGflops: gflops(torchMedian),
    threads,
    gpuMiB: tfjsSteps.at(-1)?.gpuMiB ?? null,
    loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

/** Printable lines for the seed-sized comparison. */
function describeBig(big: BigComparison): string[] {
  const fmt = (v: number | null, unit = '') => (v === null ? 'n/a' : `${v}${unit}`);
  return [
    `seed-sized step: ${big.config}; ${big.gflopPerStep} GFLOP/step; ${big.threads} threads each; load average ${big.loadAverage.join(' ')}`,
    `  FedSeg (core/train, ${big.backend}): ${big.tfjs === 'ok' ? `median ${fmt(big.tfjsMedianS, ' s')} (${big.tfjsStepsS.join(' ')}), ${fmt(big.tfjsGflops)} GFLOP/s` : big.tfjs}` +
      `, peak RSS ${fmt(big.tfjsPeakRssMiB, ' MiB')}` + (big.gpuMiB === null ? '' : `, GPU memory ${big.gpuMiB} MiB`),
    `  PyTorch: median ${fmt(big.torchMedianS, ' s')} (${big.torchStepsS.join(' ')}), ${fmt(big.torchGflops)} GFLOP/s, peak RSS ${fmt(big.torchPeakRssMiB, ' MiB')}; ${big.torch}`,
    `  ratio FedSeg / PyTorch: ${fmt(big.ratio)} (target <= 1.0; peak RSS target: FedSeg <= PyTorch)`,
  ];
}

export async function runTrainBench(options: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const quick = options.quick ?? false;
  const steps = Math.max(options.steps ?? (quick ? 3 : 5), 1);
  const backendPref = options.backend ?? (process.env.FEDSEG_BACKEND as BackendPreference | undefined) ?? 'auto';
  const info = await initBackend(backendPref);
  // initBackend already installs these in native mode; the (idempotent) call returns the list to print.
  const extraKernels = info.detail.includes('native') ? installNativeKernels(info.name) : [];
  const size = options.size ?? 64;
  const torchDevice = options.torchDevice ?? 'cpu';
  const config = benchConfig(size);
  const flop = trainingFlops(config);

  const python = options.noTorch ? undefined : findTorchPython();
  const threads = nativeThreadCount();
  const torch = python
    ? new StepProcess('PyTorch', python, [torchScript(), '--threads', String(threads), '--size', String(size), '--depth', String(config.depth), '--device', torchDevice])
    : undefined;
  let torchInfo = options.noTorch ? 'skipped (--no-torch)' : 'not found (no python that imports torch; set FEDSEG_TORCH_PYTHON)';
  const stepper = makeTfjsStepper(config);
  const tfjsSteps: number[] = [];
  const torchSteps: number[] = [];
  try {
    await stepper.step(); // warm-up: kernel registration, shader compilation, buffer pools, JIT
    await stepper.step();
    if (torch) torchInfo = `${python}: ${await torch.ready()}`;
    for (let i = 0; i < steps; i++) {
      tfjsSteps.push(await stepper.step());
      if (torch) torchSteps.push((await torch.step()).seconds);
    }
  } finally {
    torch?.close();
    stepper.dispose();
  }
  const gpu = gpuMiB();

  const tfjsMedian = median(tfjsSteps);
  const torchMedian = torchSteps.length ? median(torchSteps) : null;
  const ratio = torchMedian ? tfjsMedian / torchMedian : null;
  const peak = cpuPeak();
  const loadAverage = loadavg().map((v) => Math.round(v * 100) / 100);
  const big = options.big ?? !quick
    ? await runBigComparison({ size: options.bigSize, steps: options.bigSteps, backend: options.backend, python, torchDevice })
    : null;
  const gf = (s: number) => Math.round(flop / s / 1e9 * 10) / 10;
  const fmt = (v: number | null, d = 2) => (v === null ? 'n/a' : v.toFixed(d));

  const rows = [
    `training step: ${describeConfig(config)}, batch 1, Adam; ${(flop / 1e9).toFixed(1)} GFLOP/step (conv only: 2 x MACs forward, x3 for training)`,
    `TF.js backend: ${info.detail}; native ${extraKernels.join('/') || 'extra kernels: none'}` +
      (gpu === null ? '' : `; GPU memory held by TF.js after the steps ${gpu} MiB`),
    `PyTorch (${torchDevice}${torchDevice === 'cuda' ? ', fp32 without TF32, cuDNN' : `, ${threads} threads`}): ${torchInfo}`,
    '',
    'framework   median s   steps (s)                                   GFLOP/s',
    `TF.js       ${fmt(tfjsMedian, 3).padStart(8)}   ${tfjsSteps.map((s) => s.toFixed(2)).join(' ').padEnd(42)}  ${gf(tfjsMedian)}`,
    `PyTorch     ${fmt(torchMedian, 3).padStart(8)}   ${torchSteps.map((s) => s.toFixed(2)).join(' ').padEnd(42)}  ${torchMedian ? gf(torchMedian) : 'n/a'}`,
    `ratio TF.js / PyTorch: ${fmt(ratio)} (target <= ${torchDevice === 'cuda' ? '2.0 on the same GPU, issue 12' : '1.0'})`,
    `CPU fp32 peak (rough, ${peak.cores} cores x ${peak.ghz} GHz nominal; turbo runs higher): AVX2 2xFMA ${peak.avx2} GFLOP/s` +
      (peak.avx512 ? `, AVX-512 2xFMA ${peak.avx512} GFLOP/s` : ''),
    `noise: step spread TF.js ${spreadPct(tfjsSteps)}%${torchSteps.length ? `, PyTorch ${spreadPct(torchSteps)}%` : ''}; load average ${loadAverage.join(' ')} (${peak.cores} cores)`,
  ];
  if (big) rows.push('', ...describeBig(big));

  return {
    table: rows.join('\n'),
    json: {
      backend: info.detail,
      nativeKernels: extraKernels,
      steps,
      tfjsMedianS: Math.round(tfjsMedian * 1000) / 1000,
      tfjsStepsS: tfjsSteps.map((s) => Math.round(s * 1000) / 1000),
      torchMedianS: torchMedian === null ? null : Math.round(torchMedian * 1000) / 1000,
      torchStepsS: torchSteps.map((s) => Math.round(s * 1000) / 1000),
      torch: torchInfo,
      torchDevice,
      size,
      gpuMiB: gpu,
      ratio: ratio === null ? null : Math.round(ratio * 1000) / 1000,
      gflopPerStep: Math.round(flop / 1e8) / 10,
      tfjsGflops: gf(tfjsMedian),
      torchGflops: torchMedian ? gf(torchMedian) : null,
      peakGflops: peak,
      noise: { tfjsSpreadPct: spreadPct(tfjsSteps), torchSpreadPct: torchSteps.length ? spreadPct(torchSteps) : null, loadAverage },
      big,
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      big: { type: 'boolean', default: false },
      'no-torch': { type: 'boolean', default: false },
      'no-big': { type: 'boolean', default: false },
      steps: { type: 'string' },
      backend: { type: 'string' },
      size: { type: 'string' },
      'torch-device': { type: 'string' },
      'big-size': { type: 'string' },
      'big-steps': { type: 'string' },
      'trainer-child': { type: 'boolean', default: false },
    },
  });
  const torchDevice = values['torch-device'];
  if (torchDevice !== undefined && torchDevice !== 'cpu' && torchDevice !== 'cuda') {
    throw new Error(`--torch-device must be cpu or cuda, got ${torchDevice}`);
  }
  const size = values.size === undefined ? undefined : Number(values.size);
  if (size !== undefined && !(Number.isInteger(size) && size >= 16 && size % 4 === 0)) {
    throw new Error(`--size must be a multiple of 4, at least 16; got ${values.size}`);
  }
  const bigSize = values['big-size'] === undefined ? undefined : Number(values['big-size']);
  if (bigSize !== undefined && !(Number.isInteger(bigSize) && bigSize >= 16 && bigSize <= 128 && bigSize % 16 === 0)) {
    throw new Error(`--big-size must be a multiple of 16 from 16 to 128 (the 5-level U-Net on the 128^3 crop); got ${values['big-size']}`);
  }
  const bigSteps = values['big-steps'] === undefined ? undefined : Number(values['big-steps']);
  if (bigSteps !== undefined && !(Number.isInteger(bigSteps) && bigSteps >= 1)) throw new Error(`--big-steps must be a positive integer; got ${values['big-steps']}`);
  const backend = values.backend as BackendPreference | undefined;
  if (values['trainer-child']) {
    await trainerChild(bigSize ?? 128, bigSteps ?? 4, backend);
    return;
  }
  if (values.big) {
    const big = await runBigComparison({ size: bigSize, steps: bigSteps, backend, python: values['no-torch'] ? undefined : findTorchPython(), torchDevice });
    console.error(describeBig(big).join('\n'));
    console.log(JSON.stringify(big));
    return;
  }
  const result = await runTrainBench({
    quick: values.quick,
    steps: values.steps ? Number(values.steps) : undefined,
    backend,
    noTorch: values['no-torch'],
    big: values['no-big'] ? false : undefined,
    bigSize,
    bigSteps,
    size,
    torchDevice,
  });
  console.log(result.table);
  console.log(JSON.stringify(result.json));
  console.error(describeBackend());
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
