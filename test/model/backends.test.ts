import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeModelConfig } from '../../core/model/config.js';
import { createModel } from '../../core/model/network.js';
import { generateMiniCase } from '../../core/synth/index.js';
import { initBackend, tf } from '../../core/tf/backend.js';
import { segmentationLoss } from '../../core/train/loss.js';
import { trainLocal } from '../../core/train/trainer.js';

/** Loss and gradient of every parameter for one fixed batch, on the active backend. */
async function lossAndGradients(arch: 'unet' | 'attention-unet') {
  const mini = await generateMiniCase({ size: 16 });
  const model = createModel(makeModelConfig({ arch, baseFilters: 4, depth: 3, inputShape: [16, 16, 16] }), 3);
  const x = tf.tensor5d(mini.image.data, [1, 16, 16, 16, 3]);
  const y = tf.oneHot(tf.tensor4d(Int32Array.from(mini.classes!.data), [1, 16, 16, 16], 'int32'), 4);
  const { value, grads } = tf.variableGrads(() => segmentationLoss(y, model.logits(x)), model.variables);
  const result = { loss: value.dataSync()[0], grads: model.variables.map((v) => Float32Array.from(grads[v.name].dataSync())) };
  tf.dispose([x, y, value, ...Object.values(grads)]);
  model.dispose();
  return result;
}

for (const arch of ['unet', 'attention-unet'] as const) {
  test(`${arch}: wasm gives the cpu backend's loss and gradients`, async () => {
    await initBackend('cpu');
    const cpu = await lossAndGradients(arch);
    await initBackend('wasm');
    const wasm = await lossAndGradients(arch);
    assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-5, `loss ${cpu.loss} vs ${wasm.loss}`);
    cpu.grads.forEach((g, i) => {
      const scale = Math.max(1e-6, ...g.map(Math.abs));
      const worst = Math.max(...g.map((v, j) => Math.abs(v - wasm.grads[i][j])));
      assert.ok(worst <= 1e-3 * scale, `parameter #${i}: max |cpu - wasm| ${worst} vs max |grad| ${scale}`);
    });
  });
}

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
