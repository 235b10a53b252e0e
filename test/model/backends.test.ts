import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeModelConfig } from '../../core/model/config.js';
import { createModel } from '../../core/model/network.js';
import { generateMiniCase } from '../../core/synth/index.js';
import { initBackend, tf } from '../../core/tf/backend.js';
import { segmentationLoss } from '../../core/train/loss.js';
import { trainLocal } from '../../core/train/trainer.js';
import { on } from '../tf/test-backends.js';

/** Loss and gradient of every parameter for one fixed batch, on the active backend. */
async function lossAndGradients(arch: 'unet' | 'attention-unet') {
  const mini = await generateMiniCase({ size: 16 });
  const model = createModel(makeModelConfig({ arch, baseFilters: 4, depth: 3, inputShape: [16, 16, 16] }), 3);
  const x = tf.tensor5d(mini.image.data, [1, 16, 16, 16, 3]);
  const y = tf.oneHot(tf.tensor4d(Int32Array.from(mini.classes!.data), [1, 16, 16, 16], 'int32'), 4);
  const { value, grads } = tf.variableGrads(() => segmentationLoss(y, model.logits(x)), model.variables);
  const result = {
    loss: (await value.data())[0],
    grads: await Promise.all(model.variables.map(async (v) => Float32Array.from(await grads[v.name].data()))),
  };
  tf.dispose([x, y, value, ...Object.values(grads)]);
  model.dispose();
  return result;
}

// Loss to 1e-5 absolute and every parameter's gradient to 1e-3 of its largest element: float32 with
// another summation order (and on webgpu another device) differs by ~1e-6 relative per op.
for (const arch of ['unet', 'attention-unet'] as const) {
  for (const backend of ['wasm', 'webgpu'] as const) {
    test(`${arch}: ${backend} gives the cpu backend's loss and gradients`, on(backend), async () => {
      await initBackend('cpu');
      const cpu = await lossAndGradients(arch);
      await initBackend(backend);
      const other = await lossAndGradients(arch);
      assert.ok(Math.abs(cpu.loss - other.loss) < 1e-5, `loss ${cpu.loss} vs ${other.loss}`);
      cpu.grads.forEach((g, i) => {
        const scale = Math.max(1e-6, ...g.map(Math.abs));
        const worst = Math.max(...g.map((v, j) => Math.abs(v - other.grads[i][j])));
        assert.ok(worst <= 1e-3 * scale, `parameter #${i}: max |cpu - ${backend}| ${worst} vs max |grad| ${scale}`);
      });
    });
  }
}

test('webgpu: two Adam steps of trainLocal end within 1e-4 of the cpu backend\'s weights', on('webgpu'), async () => {
  const mini = await generateMiniCase({ size: 16 });
  const train = async (backend: 'cpu' | 'webgpu') => {
    await initBackend(backend);
    const model = createModel(makeModelConfig({ arch: 'unet', baseFilters: 4, depth: 3, inputShape: [16, 16, 16] }), 1);
    const { weights, metrics } = await trainLocal({ model, data: [{ caseId: 'a', image: mini.image, classes: mini.classes! }], epochs: 2, batchSize: 1, learningRate: 1e-3, seed: 4 });
    model.dispose();
    return { weights, loss: metrics.loss };
  };
  const cpu = await train('cpu');
  const gpu = await train('webgpu');
  await initBackend('cpu');
  assert.ok(Math.abs(cpu.loss - gpu.loss) < 1e-4, `loss ${cpu.loss} vs ${gpu.loss}`);
  // Adam's first steps move each weight by ~lr = 1e-3 whatever the gradient's size, so 1e-4 absolute
  // is a tenth of a step: a wrong gradient sign or kernel shows, float32 rounding does not.
  cpu.weights.forEach((w, i) => {
    const worst = Math.max(...w.data.map((v, j) => Math.abs(v - gpu.weights[i].data[j])));
    assert.ok(worst < 1e-4, `${w.name}: max |cpu - webgpu| ${worst}`);
  });
});

test('training is bit-reproducible with a seed on wasm', async () => {
  await initBackend('wasm');
  const mini = await generateMiniCase({ size: 16 });
  const run = async () => {
    const model = createModel(makeModelConfig({ arch: 'attention-unet', baseFilters: 4, depth: 3, inputShape: [16, 16, 16] }), 1);
    const { weights } = await trainLocal({ model, data: [{ caseId: 'a', image: mini.image, classes: mini.classes! }], epochs: 2, batchSize: 1, learningRate: 1e-3, seed: 4 });
    model.dispose();
    return weights;
  };
  assert.deepEqual(await run(), await run());
  await initBackend('cpu');
});
