/**
 * `fedseg bench train`: one Adam training step of the issue-6 U-Net (64^3 x 3 channels, levels
 * 16/32/64, two 3x3x3 conv + ReLU per level, max-pool, nearest upsampling + 3x3x3 conv, concatenated
 * skips, 1x1x1 head to 4 classes, softmax cross-entropy, batch 1) in TF.js (core/model) and, when a
 * Python with torch exists, the identical network in PyTorch (bench/torch_unet.py, 2 threads),
 * alternating one step of each so both see the same machine load. Prints medians, the ratio, effective
 * GFLOP/s and this CPU's rough fp32 peak, then (full mode) the real 128^3 model's step time and peak
 * memory, measured in a child process of its own.
 *
 * FLOPs are counted analytically from the convolutions only: forward = 2 x multiply-adds
 * (core/model forwardMacs), a training step = 3 x forward (forward + backprop-input + backprop-filter).
 *
 * On webgpu (`--backend webgpu`) the table adds the adapter and the GPU memory TF.js holds after the
 * steps; `--torch-device cuda` runs the PyTorch side on the GPU (fp32 without TF32, cuDNN), which is
 * what scripts/gpu-check.sh compares on an NVIDIA machine, at `--size 64` and `--size 128`.
 *
 * Run alone: node --import tsx bench/train.ts [--quick] [--steps N] [--backend NAME] [--size S] [--no-torch]
 *                                             [--torch-device cpu|cuda] [--no-big]
 *            node --import tsx bench/train.ts --big   (only the 128^3 step, prints one JSON line)
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { forwardMacs, createModel } from '../core/model/network.js';
import { makeModelConfig, type ModelConfig } from '../core/model/config.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { initBackend, describeBackend, tf, type BackendPreference } from '../core/tf/backend.js';
import { installNativeKernels } from '../core/tf/native-engine.js';

export interface TrainBenchOptions {
  quick?: boolean;
  /** Timed steps of each framework (at least 5 in full mode). */
  steps?: number;
  backend?: BackendPreference;
  /** Skip the PyTorch side even if torch is installed. */
  noTorch?: boolean;
  /** Also run the full 128^3 model (default: in full mode). */
  big?: boolean;
  /** Input edge of the benchmark network (default 64). */
  size?: number;
  /** Where PyTorch runs (default cpu, 2 threads). */
  torchDevice?: 'cpu' | 'cuda';
}

export interface BigStepResult {
  config: string;
  backend: string;
  stepSeconds: number;
  /** CPU seconds the process used during the timed step (all threads): less sensitive to other load. */
  cpuSeconds: number;
  gflopPerStep: number;
  gflops: number;
  peakRssMiB: number;
  /** GPU memory TF.js's webgpu backend holds after the step (its buffer pool keeps the peak); null on other backends. */
  gpuMiB: number | null;
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
    big: BigStepResult | { skipped: string } | null;
    bigNote: string | null;
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

/** The product's model at full size: 128^3, 5 levels (16..256 filters), transposed-conv upsampling. */
export function bigConfig(): ModelConfig {
  return makeModelConfig({ inputShape: [128, 128, 128], dropout: [0, 0, 0, 0, 0] });
}

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

class TorchProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly queue: string[] = [];
  private waiter: ((line: string) => void) | undefined;
  private stderr = '';

  constructor(python: string, threads: number, size: number, device: 'cpu' | 'cuda') {
    const script = fileURLToPath(new URL('./torch_unet.py', import.meta.url));
    // Same niceness as this process (run the whole benchmark under `nice` on a shared machine).
    this.child = spawn(python, [script, '--threads', String(threads), '--size', String(size), '--device', device], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (line) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(line);
      } else this.queue.push(line);
    });
    this.child.on('close', (code) => this.waiter?.(`exit ${code} ${this.stderr}`));
  }

  private next(): Promise<string> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  async ready(): Promise<string> {
    const line = await this.next();
    if (!line.startsWith('ready ')) throw new Error(`PyTorch reference failed to start: ${line}`);
    return line.slice('ready '.length);
  }

  async step(): Promise<number> {
    this.child.stdin.write('step\n');
    const line = await this.next();
    if (!line.startsWith('step ')) throw new Error(`PyTorch step failed: ${line}`);
    return Number(line.slice('step '.length));
  }

  close(): void {
    this.child.stdin.end('quit\n');
  }
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

/** Runs the 128^3 step in this process and returns its numbers (peak RSS covers this process only). */
export async function runBigStep(backend: BackendPreference = 'auto'): Promise<BigStepResult> {
  const info = await initBackend(backend);
  const config = bigConfig();
  const stepper = makeTfjsStepper(config);
  await stepper.step(); // warm-up: kernel setup and first-use allocations
  const cpuBefore = process.cpuUsage();
  const seconds = await stepper.step();
  const cpu = process.cpuUsage(cpuBefore);
  const gpu = gpuMiB();
  stepper.dispose();
  const flop = trainingFlops(config);
  return {
    config: describeConfig(config),
    backend: info.detail,
    stepSeconds: Math.round(seconds * 100) / 100,
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    gflopPerStep: Math.round(flop / 1e9),
    gflops: Math.round(flop / seconds / 1e9),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    gpuMiB: gpu,
  };
}

function runBigInChild(backend: BackendPreference): BigStepResult | { skipped: string } {
  const child = spawnSync(process.execPath, nodeArgs(new URL(import.meta.url), ['--big', '--backend', backend]), {
    encoding: 'utf8',
    timeout: 30 * 60_000,
    maxBuffer: 16 << 20,
  });
  const last = child.stdout?.trim().split('\n').pop() ?? '';
  if (child.status === 0 && last.startsWith('{')) return JSON.parse(last) as BigStepResult;
  const why = `exit ${child.status}: ${(child.stderr ?? '').trim().split('\n').find((l) => /memory|abort|Error/i.test(l)) ?? 'no message'}`;
  return { skipped: `128^3 step on ${backend} failed (${why.slice(0, 300)})` };
}

/** The 128^3 step on the requested backend; when that is wasm and it fails (its heap is capped at
 * 4 GiB), again on the cpu backend so the time and peak memory are still reported. */
function runBig(backend: BackendPreference): { result: BigStepResult | { skipped: string }; note?: string } {
  const first = runBigInChild(backend);
  if ('stepSeconds' in first || backend === 'cpu') return { result: first };
  const retry = runBigInChild('cpu');
  return { result: retry, note: first.skipped };
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
  const torch = python ? new TorchProcess(python, 2, size, torchDevice) : undefined;
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
      if (torch) torchSteps.push(await torch.step());
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
  const bigRun = options.big ?? !quick ? runBig(backendPref) : null;
  const big = bigRun?.result ?? null;
  const loadAverage = (await import('node:os')).loadavg().map((v) => Math.round(v * 100) / 100);
  const gf = (s: number) => Math.round(flop / s / 1e9 * 10) / 10;
  const fmt = (v: number | null, d = 2) => (v === null ? 'n/a' : v.toFixed(d));

  const rows = [
    `training step: ${describeConfig(config)}, batch 1, Adam; ${(flop / 1e9).toFixed(1)} GFLOP/step (conv only: 2 x MACs forward, x3 for training)`,
    `TF.js backend: ${info.detail}; native ${extraKernels.join('/') || 'extra kernels: none'}` +
      (gpu === null ? '' : `; GPU memory held by TF.js after the steps ${gpu} MiB`),
    `PyTorch (${torchDevice}${torchDevice === 'cuda' ? ', fp32 without TF32, cuDNN' : ', 2 threads'}): ${torchInfo}`,
    '',
    'framework   median s   steps (s)                                   GFLOP/s',
    `TF.js       ${fmt(tfjsMedian, 3).padStart(8)}   ${tfjsSteps.map((s) => s.toFixed(2)).join(' ').padEnd(42)}  ${gf(tfjsMedian)}`,
    `PyTorch     ${fmt(torchMedian, 3).padStart(8)}   ${torchSteps.map((s) => s.toFixed(2)).join(' ').padEnd(42)}  ${torchMedian ? gf(torchMedian) : 'n/a'}`,
    `ratio TF.js / PyTorch: ${fmt(ratio)} (target <= ${torchDevice === 'cuda' ? '2.0 on the same GPU, issue 12' : '1.0'})`,
    `CPU fp32 peak (rough, ${peak.cores} cores x ${peak.ghz} GHz nominal; turbo runs higher): AVX2 2xFMA ${peak.avx2} GFLOP/s` +
      (peak.avx512 ? `, AVX-512 2xFMA ${peak.avx512} GFLOP/s` : ''),
    `noise: step spread TF.js ${spreadPct(tfjsSteps)}%${torchSteps.length ? `, PyTorch ${spreadPct(torchSteps)}%` : ''}; load average ${loadAverage.join(' ')} (2 shared cores)`,
  ];
  if (bigRun?.note) rows.push(`full model 128^3: ${bigRun.note}; retried on the cpu backend`);
  if (big && 'stepSeconds' in big) {
    rows.push(`full model ${big.config} on ${big.backend}: ${big.stepSeconds} s/step (${big.cpuSeconds} CPU s), ${big.gflops} GFLOP/s, ` +
      `peak RSS ${big.peakRssMiB} MiB (target < 4096)` + (big.gpuMiB === null ? '' : `, GPU memory ${big.gpuMiB} MiB (target < 8192)`));
  } else if (big) rows.push(`full model 128^3: ${big.skipped}`);

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
      bigNote: bigRun?.note ?? null,
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
  const backend = values.backend as BackendPreference | undefined;
  if (values.big) {
    console.log(JSON.stringify(await runBigStep(backend)));
    return;
  }
  const result = await runTrainBench({
    quick: values.quick,
    steps: values.steps ? Number(values.steps) : undefined,
    backend,
    noTorch: values['no-torch'],
    big: values['no-big'] ? false : undefined,
    size,
    torchDevice,
  });
  console.log(result.table);
  console.log(JSON.stringify(result.json));
  console.error(describeBackend());
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
