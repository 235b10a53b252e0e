/**
 * conv3d kernel throughput: forward, backprop-input and backprop-filter at U-Net-like shapes
 * (3x3x3 'same', batch 1), TF.js's stock kernels against FedSeg's (wasm: im2col + XNNPACK; cpu: direct
 * JS loops; native when its addon loads), plus the wasm backend's own matMul for reference.
 * GFLOP/s = 2 x multiply-adds / time; each backprop counts the same FLOPs as the forward pass.
 * Medians of several runs (this machine is shared, so single timings are noisy).
 * Run alone: `node --import tsx bench/conv.ts [--quick]`; or `fedseg bench conv`.
 */
import { pathToFileURL } from 'node:url';
import { initBackend, tf } from '../core/tf/backend.js';
import { convFlops, geometryFromConvInfo } from '../core/tf/conv-engine.js';
import { defaultConvMode, setConvKernels, stockConvKernel, type ConvKernelMode } from '../core/tf/fast-conv.js';

type Shape5 = [number, number, number, number, number];
type Kernel = 'forward' | 'backpropInput' | 'backpropFilter';
const KERNELS: Kernel[] = ['forward', 'backpropInput', 'backpropFilter'];

export interface ConvBenchRow {
  backend: 'wasm' | 'cpu';
  mode: ConvKernelMode;
  shape: string;
  kernel: Kernel;
  medianMs: number;
  gflops: number;
  runs: number;
}

export interface ConvBenchResult {
  table: string;
  json: { rows: ConvBenchRow[]; matMul: { shape: string; gflops: number }[]; speedup: Record<string, number> };
}

const SHAPES: { name: string; x: Shape5; filter: Shape5 }[] = [
  { name: '64^3 x16->16', x: [1, 64, 64, 64, 16], filter: [3, 3, 3, 16, 16] },
  { name: '32^3 x32->32', x: [1, 32, 32, 32, 32], filter: [3, 3, 3, 32, 32] },
  { name: '16^3 x64->64', x: [1, 16, 16, 16, 64], filter: [3, 3, 3, 64, 64] },
];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Installs TF.js's true stock kernels, including the wasm gradients FedSeg normally replaces. */
async function useTrueStock(backend: 'wasm' | 'cpu'): Promise<void> {
  await setConvKernels(backend, 'stock');
  for (const name of [tf.Conv3D, tf.Conv3DBackpropInputV2, tf.Conv3DBackpropFilterV2]) {
    const stock = stockConvKernel(backend, name);
    if (!stock) throw new Error(`no stock ${name} on ${backend}`);
    tf.unregisterKernel(name, backend);
    tf.registerKernel(stock);
  }
}

function timeKernel(kernel: Kernel, x: tf.Tensor, filter: tf.Tensor, dy: tf.Tensor, runs: number): number[] {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const out = kernel === 'forward'
      ? tf.engine().runKernel(tf.Conv3D, { x, filter }, { strides: 1, pad: 'same', dataFormat: 'NDHWC', dilations: 1 })
      : kernel === 'backpropInput'
        ? tf.engine().runKernel(tf.Conv3DBackpropInputV2, { dy, filter }, { strides: 1, pad: 'same', inputShape: x.shape })
        : tf.engine().runKernel(tf.Conv3DBackpropFilterV2, { x, dy }, { strides: 1, pad: 'same', filterShape: filter.shape });
    (out as tf.Tensor).dataSync();
    times.push(performance.now() - start);
    (out as tf.Tensor).dispose();
  }
  return times;
}

function matMulGflops(m: number, k: number, n: number, runs: number): number {
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  const times: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const start = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    if (i > 0) times.push(performance.now() - start); // first run packs b
    c.dispose();
  }
  a.dispose();
  b.dispose();
  return (2 * m * k * n) / (median(times) * 1e6);
}

export async function runConvBench(options: { quick?: boolean } = {}): Promise<ConvBenchResult> {
  const quick = options.quick ?? false;
  const rows: ConvBenchRow[] = [];
  const plans: { backend: 'wasm' | 'cpu'; mode: ConvKernelMode | 'true-stock'; shapes: typeof SHAPES; runs: number }[] = [];
  const wasmFast = await defaultConvMode('wasm');
  // Stock kernels are 20-50x slower: one run each, and only the smallest shapes in quick mode.
  plans.push({ backend: 'wasm', mode: 'true-stock', shapes: quick ? SHAPES.slice(2) : SHAPES, runs: 1 });
  plans.push({ backend: 'wasm', mode: 'xnnpack', shapes: SHAPES, runs: quick ? 3 : 5 });
  if (wasmFast === 'native') plans.push({ backend: 'wasm', mode: 'native', shapes: SHAPES, runs: quick ? 3 : 5 });
  if (!quick) {
    plans.push({ backend: 'cpu', mode: 'true-stock', shapes: SHAPES.slice(2), runs: 1 });
    plans.push({ backend: 'cpu', mode: 'js', shapes: SHAPES.slice(2), runs: 3 });
  }

  let matMul: { shape: string; gflops: number }[] = [];
  for (const plan of plans) {
    await initBackend(plan.backend);
    if (plan.backend === 'wasm' && matMul.length === 0) {
      matMul = [
        { shape: '1024x1024 * 1024x1024', gflops: round(matMulGflops(1024, 1024, 1024, quick ? 3 : 5)) },
        { shape: '32768x432 * 432x16 (64^3 conv rows)', gflops: round(matMulGflops(32768, 432, 16, quick ? 3 : 5)) },
      ];
    }
    if (plan.mode === 'true-stock') await useTrueStock(plan.backend);
    else await setConvKernels(plan.backend, plan.mode);
    for (const shape of plan.shapes) {
      const x = tf.randomUniform(shape.x, -1, 1);
      const filter = tf.randomUniform(shape.filter, -1, 1);
      const dy = tf.randomUniform([...shape.x.slice(0, 4), shape.filter[4]], -1, 1);
      const flops = convFlops(geometryFromConvInfo(tf.backend_util.computeConv3DInfo(shape.x, shape.filter, 1, 1, 'same')));
      for (const kernel of KERNELS) {
        if (plan.runs > 1) timeKernel(kernel, x, filter, dy, 1); // warm-up: JIT and XNNPACK packing
        const ms = median(timeKernel(kernel, x, filter, dy, plan.runs));
        rows.push({
          backend: plan.backend, mode: plan.mode === 'true-stock' ? 'stock' : plan.mode, shape: shape.name, kernel,
          medianMs: round(ms), gflops: round(flops / (ms * 1e6)), runs: plan.runs,
        });
      }
      tf.dispose([x, filter, dy]);
    }
    await setConvKernels(plan.backend, await defaultConvMode(plan.backend));
  }

  const speedup: Record<string, number> = {};
  for (const row of rows) {
    if (row.mode === 'stock') continue;
    const stock = rows.find((r) => r.mode === 'stock' && r.backend === row.backend && r.shape === row.shape && r.kernel === row.kernel);
    if (stock) speedup[`${row.backend}/${row.mode} ${row.shape} ${row.kernel}`] = round(stock.medianMs / row.medianMs);
  }
  const table = [
    'conv3d 3x3x3 same, batch 1      backend mode      kernel            median ms   GFLOP/s  runs',
    ...rows.map((r) => `${r.shape.padEnd(32)} ${r.backend.padEnd(7)} ${r.mode.padEnd(9)} ${r.kernel.padEnd(16)} ${r.medianMs.toFixed(1).padStart(10)} ${r.gflops.toFixed(2).padStart(9)} ${String(r.runs).padStart(5)}`),
    ...matMul.map((m) => `wasm matMul ${m.shape.padEnd(40)} ${m.gflops.toFixed(2).padStart(9)} GFLOP/s`),
  ].join('\n');
  return { table, json: { rows, matMul, speedup } };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await runConvBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${result.table}\n${JSON.stringify({ bench: 'conv', ...result.json })}\n`);
}
