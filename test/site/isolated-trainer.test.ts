import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RoundInstructions } from '../../core/federation/protocol.js';
import type { TensorList } from '../../core/federation/tensors.js';
import { initialWeights } from '../../core/model/init.js';
import { cropOrigin, cropShape, DEFAULT_CROP } from '../../core/preprocess/index.js';
import { generateCase, siteProfile, trainingCaseId, writeCaseFolder } from '../../core/synth/index.js';
import { createIsolatedTrainer } from '../../site/isolated-trainer.js';
import type { TrainerProgress } from '../../site/runtime.js';
import { createDataDirTrainer, type DataDirTrainerOptions } from '../../site/trainer.js';
import { tempDir, tinyConfig } from '../server/helpers.js';

// The same 16^3 synthetic cases as test/site/trainer.test.ts: the real preprocess -> train -> evaluate path, small.
const GRID = 16;
const tmp = tempDir('isolated-trainer');
const options: DataDirTrainerOptions = {
  trainDirs: [join(tmp.dir, 'train')], validationDirs: [join(tmp.dir, 'validation')], backend: 'cpu', seed: 1,
  preprocess: { crop: { i: [0, GRID], j: [0, GRID], k: [0, GRID] } },
};
const instructions: RoundInstructions = { epochs: 2, learningRate: 0.01, batchSize: 1, mu: 0, seed: 3 };
const global: TensorList = initialWeights(tinyConfig, 11);

before(async () => {
  for (let n = 1; n <= 3; n++) {
    const id = trainingCaseId(n);
    const raw = generateCase(5, siteProfile(5, 1), n, { dims: [GRID, GRID, GRID], fov: { start: cropOrigin(DEFAULT_CROP), size: cropShape(DEFAULT_CROP) } });
    await writeCaseFolder(join(tmp.dir, n === 3 ? 'validation' : 'train', id), id, raw);
  }
});
after(() => tmp.cleanup());

const signal = () => new AbortController().signal;

test('a worker thread per call gives exactly the in-process trainer\'s counts, weights and metrics, with progress, and leaves the global weights alone', async () => {
  const isolated = createIsolatedTrainer(options);
  const inProcess = createDataDirTrainer(options);
  assert.deepEqual(await isolated.caseCounts(), { train: 2, validation: 1 });
  const before = global.map((t) => Float32Array.from(t.data));
  const progress: TrainerProgress[] = [];
  const trained = await isolated.train({ config: tinyConfig, weights: global, instructions, signal: signal(), onProgress: (p) => progress.push(p) });
  const reference = await inProcess.train({ config: tinyConfig, weights: global, instructions, signal: signal(), onProgress: () => {} });
  assert.equal(trained.numCases, 2);
  assert.deepEqual(trained.weights.map((t) => [t.name, t.shape]), reference.weights.map((t) => [t.name, t.shape]));
  trained.weights.forEach((t, i) => assert.deepEqual(t.data, reference.weights[i].data, `tensor ${t.name} is bit-identical`));
  assert.ok(trained.weights.some((t, i) => t.data.some((v, j) => v !== global[i].data[j])), 'training moved the weights');
  global.forEach((t, i) => assert.deepEqual(t.data, before[i], 'the caller keeps its global model'));
  assert.deepEqual(progress.filter((p) => p.step === undefined).map((p) => p.epoch), [1, 2], 'epoch ends reach the caller');
  assert.match(isolated.backend?.() ?? '', /^cpu.*worker thread/);

  const evaluated = await isolated.evaluate({ config: tinyConfig, weights: trained.weights, signal: signal() });
  assert.deepEqual(evaluated, await inProcess.evaluate({ config: tinyConfig, weights: trained.weights, signal: signal() }));
});

test('aborting a call ends its thread and rejects; a failing call rejects with the trainer\'s own message', async () => {
  const isolated = createIsolatedTrainer(options);
  const controller = new AbortController();
  const training = isolated.train({
    config: tinyConfig, weights: global, instructions: { ...instructions, epochs: 50 }, signal: controller.signal,
    onProgress: () => controller.abort(),
  });
  await assert.rejects(training, /cancelled/);

  const missing = createIsolatedTrainer({ ...options, trainDirs: [join(tmp.dir, 'no-such-folder')] });
  await assert.rejects(missing.caseCounts(), /no-such-folder/);
});
