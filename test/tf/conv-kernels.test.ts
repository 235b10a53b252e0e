import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initBackend, tf } from '../../core/tf/backend.js';
import { defaultConvMode, setConvKernels, stockConvKernel, type ConvKernelMode } from '../../core/tf/fast-conv.js';
import { setColumnBudget } from '../../core/tf/wasm-conv.js';
import { on } from './test-backends.js';

type Shape5 = [number, number, number, number, number];
interface ConvCase {
  x: Shape5;
  filter: Shape5;
  strides: number | [number, number, number];
  pad: 'same' | 'valid';
  dilations?: number | [number, number, number];
}

const CASES: ConvCase[] = [
  { x: [1, 5, 6, 4, 3], filter: [3, 3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [2, 4, 4, 5, 2], filter: [3, 3, 3, 2, 5], strides: 1, pad: 'valid' },
  { x: [1, 6, 5, 7, 4], filter: [3, 3, 3, 4, 2], strides: 2, pad: 'same' },
  { x: [2, 7, 6, 5, 1], filter: [3, 2, 3, 1, 3], strides: 2, pad: 'valid' },
  { x: [1, 6, 6, 6, 5], filter: [2, 2, 2, 5, 3], strides: 2, pad: 'valid' },
  { x: [1, 5, 4, 6, 3], filter: [1, 3, 2, 3, 2], strides: [1, 2, 1], pad: 'same' },
  { x: [2, 3, 4, 5, 6], filter: [1, 1, 1, 6, 4], strides: 1, pad: 'same' },
  { x: [1, 4, 4, 4, 8], filter: [3, 3, 3, 8, 8], strides: 1, pad: 'same' },
  { x: [1, 4, 5, 3, 2], filter: [5, 5, 5, 2, 2], strides: 1, pad: 'same' },
  { x: [1, 7, 7, 7, 2], filter: [3, 3, 3, 2, 3], strides: 1, pad: 'same', dilations: 2 },
  { x: [1, 8, 6, 7, 2], filter: [3, 3, 2, 2, 2], strides: 1, pad: 'valid', dilations: [2, 1, 3] },
  { x: [2, 5, 4, 6, 3], filter: [3, 3, 3, 3, 2], strides: 1, pad: 'same' },
  { x: [1, 4, 5, 4, 2], filter: [2, 2, 2, 2, 3], strides: 1, pad: 'same' },
  { x: [1, 3, 7, 2, 4], filter: [3, 5, 1, 4, 2], strides: 1, pad: 'same' },
];

const TOLERANCE = 1e-5;

function random(shape: number[], seed: number): Float32Array {
  let s = seed;
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 1073741824 - 1;
  }
  return out;
}

/** max |a - b| / max |reference|: float32 rounding error relative to the result's scale. */
function relativeError(actual: Float32Array | Int32Array | Uint8Array, reference: Float32Array | Int32Array | Uint8Array): number {
  assert.equal(actual.length, reference.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - reference[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  return err / Math.max(scale, 1e-30);
}

interface Results { forward: Float32Array; backpropInput: Float32Array; backpropFilter: Float32Array }

/** The three kernels run directly (so each is tested alone) on the current backend; no gradients for dilated cases. */
function kernelOutputs(c: ConvCase, seed: number): { forward: tf.Tensor; backpropInput?: tf.Tensor; backpropFilter?: tf.Tensor } {
  const dilated = c.dilations !== undefined && c.dilations !== 1;
  return tf.tidy(() => {
    const x = tf.tensor(random(c.x, seed), c.x);
    const filter = tf.tensor(random(c.filter, seed + 1), c.filter);
    const y = tf.engine().runKernel(tf.Conv3D, { x, filter }, {
      strides: c.strides, pad: c.pad, dataFormat: 'NDHWC', dilations: c.dilations ?? 1,
    }) as tf.Tensor;
    if (dilated) return { forward: y };
    const dy = tf.tensor(random(y.shape, seed + 2), y.shape);
    const dx = tf.engine().runKernel(tf.Conv3DBackpropInputV2, { dy, filter }, { strides: c.strides, pad: c.pad, inputShape: c.x }) as tf.Tensor;
    const dw = tf.engine().runKernel(tf.Conv3DBackpropFilterV2, { x, dy }, { strides: c.strides, pad: c.pad, filterShape: c.filter }) as tf.Tensor;
    return { forward: y, backpropInput: dx, backpropFilter: dw };
  });
}

function runKernels(c: ConvCase, seed: number): Results {
  const out = kernelOutputs(c, seed);
  const read = (t?: tf.Tensor) => (t ? (t.dataSync() as Float32Array) : new Float32Array());
  const results = { forward: read(out.forward), backpropInput: read(out.backpropInput), backpropFilter: read(out.backpropFilter) };
  tf.dispose(out);
  return results;
}

/** runKernels with asynchronous reads, which webgpu needs. */
async function runKernelsAsync(c: ConvCase, seed: number): Promise<Results> {
  const out = kernelOutputs(c, seed);
  const read = async (t?: tf.Tensor) => (t ? Float32Array.from(await t.data()) : new Float32Array());
  const results = { forward: await read(out.forward), backpropInput: await read(out.backpropInput), backpropFilter: await read(out.backpropFilter) };
  tf.dispose(out);
  return results;
}

async function referenceResults(cases: ConvCase[] = CASES): Promise<Results[]> {
  await initBackend('cpu');
  await setConvKernels('cpu', 'stock');
  const results = cases.map((c, i) => runKernels(c, 100 * i + 7));
  await setConvKernels('cpu', await defaultConvMode('cpu'));
  return results;
}

type ModeCase = { backend: 'cpu' | 'wasm'; mode: ConvKernelMode; budget?: number };
const MODES: ModeCase[] = [
  { backend: 'cpu', mode: 'js' },
  { backend: 'wasm', mode: 'xnnpack' },
  { backend: 'wasm', mode: 'xnnpack', budget: 700 }, // forces many column chunks, including ragged last ones
  { backend: 'wasm', mode: 'js' },
  { backend: 'wasm', mode: 'stock' }, // stock forward, js reference for the broken stock gradients
];

test('fast conv3d kernels equal the reference kernels on every backend, shape, stride, padding and dilation', async () => {
  const reference = await referenceResults();
  // The native engine joins when its addon is built on this machine (it is optional).
  const nativeModes: ModeCase[] = (await defaultConvMode('cpu')) === 'native'
    ? [{ backend: 'cpu', mode: 'native' }, { backend: 'wasm', mode: 'native' }] : [];
  for (const { backend, mode, budget } of [...MODES, ...nativeModes]) {
    await initBackend(backend);
    await setConvKernels(backend, mode);
    const previous = budget === undefined ? undefined : setColumnBudget(budget);
    try {
      CASES.forEach((c, i) => {
        const got = runKernels(c, 100 * i + 7);
        for (const kernel of ['forward', 'backpropInput', 'backpropFilter'] as const) {
          const err = relativeError(got[kernel], reference[i][kernel]);
          assert.ok(err < TOLERANCE, `${backend}/${mode}${budget ? ` budget ${budget}` : ''} case ${i} ${kernel}: relative error ${err}`);
        }
      });
    } finally {
      if (previous !== undefined) setColumnBudget(previous);
      await setConvKernels(backend, await defaultConvMode(backend));
    }
  }
});

test("the wasm backend's stock conv3d gradients are wrong in TF.js 4.22, which is why they are always replaced", async () => {
  const reference = await referenceResults();
  await initBackend('wasm');
  const replaced = [tf.Conv3DBackpropInputV2, tf.Conv3DBackpropFilterV2].map((name) => tf.getKernel(name, 'wasm')!);
  for (const config of replaced) {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(stockConvKernel('wasm', config.kernelName)!);
  }
  try {
    const stride1 = runKernels(CASES[0], 7);
    const stride2 = runKernels(CASES[2], 207);
    // "Wrong" includes NaN: the stock kernel's output also depends on leftover heap contents.
    const wrong = (err: number) => !(err < 0.1);
    assert.ok(wrong(relativeError(stride1.backpropInput, reference[0].backpropInput)), 'stock backprop-input unexpectedly correct');
    assert.ok(relativeError(stride1.backpropFilter, reference[0].backpropFilter) < TOLERANCE, 'stock backprop-filter wrong at stride 1');
    assert.ok(wrong(relativeError(stride2.backpropFilter, reference[2].backpropFilter)), 'stock backprop-filter unexpectedly correct');
  } finally {
    for (const config of replaced) {
      tf.unregisterKernel(config.kernelName, 'wasm');
      tf.registerKernel(config);
    }
  }
});

test('gradients through a small conv net equal the stock path', async () => {
  const net = (x: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor, w3: tf.Tensor) => {
    const h1 = tf.relu(tf.conv3d(x as tf.Tensor5D, w1 as tf.Tensor5D, 1, 'same'));
    const h2 = tf.relu(tf.conv3d(h1, w2 as tf.Tensor5D, 2, 'same'));
    const up = tf.conv3dTranspose(h2, w3 as tf.Tensor5D, [2, 6, 6, 6, 3], 2, 'same');
    return tf.sum(tf.square(tf.sub(up, h1)));
  };
  const shapes: number[][] = [[2, 6, 6, 6, 2], [3, 3, 3, 2, 3], [3, 3, 3, 3, 4], [2, 2, 2, 3, 4]];
  const run = () => tf.tidy(() => {
    const inputs = shapes.map((s, i) => tf.tensor(random(s, 900 + i), s));
    const { value, grads } = tf.valueAndGrads(net)(inputs);
    return [value.dataSync() as Float32Array, ...grads.map((g) => g.dataSync() as Float32Array)];
  });
  await initBackend('cpu');
  await setConvKernels('cpu', 'stock');
  const reference = run();
  await setConvKernels('cpu', await defaultConvMode('cpu'));
  for (const backend of ['cpu', 'wasm'] as const) {
    await initBackend(backend);
    const got = run();
    got.forEach((values, i) => {
      const err = relativeError(values, reference[i]);
      assert.ok(err < 1e-4, `${backend} ${i === 0 ? 'loss' : `gradient ${i - 1}`}: relative error ${err}`);
    });
  }
});

test('webgpu: the tiled WGSL conv3d kernels equal the reference kernels on every shape, stride, padding and dilation, with split-K', on('webgpu'), async () => {
  // Wide channels (two 64-wide output tiles) and a volume of 4352 output voxels, over the 4096 that one
  // backprop-filter workgroup sums (two split-K partial sums).
  const cases: ConvCase[] = [...CASES, { x: [1, 4, 4, 4, 8], filter: [3, 3, 3, 8, 70], strides: 1, pad: 'same' },
    { x: [1, 16, 16, 17, 2], filter: [3, 3, 3, 2, 3], strides: 1, pad: 'same' }];
  const reference = await referenceResults(cases);
  const info = await initBackend('webgpu');
  assert.match(info.detail, /FedSeg tiled conv3d/);
  for (const [i, c] of cases.entries()) {
    const got = await runKernelsAsync(c, 100 * i + 7);
    for (const kernel of ['forward', 'backpropInput', 'backpropFilter'] as const) {
      const err = relativeError(got[kernel], reference[i][kernel]);
      assert.ok(err < TOLERANCE, `webgpu case ${i} ${kernel}: relative error ${err}`);
    }
  }
  await initBackend('cpu');
});
