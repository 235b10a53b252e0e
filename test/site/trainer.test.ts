import assert from 'node:assert/strict';
import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RoundInstructions } from '../../core/federation/protocol.js';
import type { TensorList } from '../../core/federation/tensors.js';
import { initialWeights } from '../../core/model/init.js';
import { cropOrigin, cropShape, DEFAULT_CROP } from '../../core/preprocess/index.js';
import { generateCase, siteProfile, trainingCaseId, writeCaseFolder } from '../../core/synth/index.js';
import type { TrainerProgress } from '../../site/runtime.js';
import { createDataDirTrainer } from '../../site/trainer.js';
import { tempDir, tinyConfig } from '../server/helpers.js';

// Synthetic cases sampled on the tiny model's 16^3 grid (the default crop window, read whole), so
// the trainer runs the real preprocess -> train -> validate path in well under a second per round.
const GRID = 16;
const tmp = tempDir('site-trainer');
const trainDir = join(tmp.dir, 'train');
const validationDir = join(tmp.dir, 'validation');
const preprocess = { crop: { i: [0, GRID] as [number, number], j: [0, GRID] as [number, number], k: [0, GRID] as [number, number] } };
const instructions: RoundInstructions = { epochs: 1, learningRate: 0.01, batchSize: 1, mu: 0, seed: 3 };
const global: TensorList = initialWeights(tinyConfig, 11);

async function writeCase(dir: string, caseNumber: number): Promise<string> {
  const id = trainingCaseId(caseNumber);
  const raw = generateCase(5, siteProfile(5, 1), caseNumber, { dims: [GRID, GRID, GRID], fov: { start: cropOrigin(DEFAULT_CROP), size: cropShape(DEFAULT_CROP) } });
  await writeCaseFolder(join(dir, id), id, raw);
  return join(dir, id, `${id}_seg.nii.gz`);
}

before(async () => {
  for (let n = 1; n <= 3; n++) await writeCase(trainDir, n);
  // A fourth training folder without its mask: found on disk but not usable for training.
  await unlink(await writeCase(trainDir, 4));
  await writeCase(validationDir, 5);
});
after(() => tmp.cleanup());

function trainer() {
  return createDataDirTrainer({ trainDirs: [trainDir], validationDirs: [validationDir], preprocess, backend: 'cpu', seed: 1 });
}

function train(t: ReturnType<typeof trainer>, mu: number, onProgress: (p: TrainerProgress) => void = () => {}) {
  return t.train({ config: tinyConfig, weights: global, instructions: { ...instructions, mu }, signal: new AbortController().signal, onProgress });
}

function maxAbsDifference(a: TensorList, b: TensorList): number {
  let max = 0;
  a.forEach((t, i) => t.data.forEach((v, j) => (max = Math.max(max, Math.abs(v - b[i].data[j])))));
  return max;
}

/** Every step of the one epoch is reported with its step/steps and ETA (the app's bar moves within an epoch), then the epoch's end. */
function assertStepProgress(progress: TrainerProgress[]) {
  const steps = progress.filter((p) => p.step !== undefined);
  assert.ok(steps.length >= 1, 'step progress arrives');
  const perEpoch = steps[0].steps;
  assert.ok(perEpoch !== undefined && perEpoch >= 1);
  assert.deepEqual(steps.map((p) => p.step), Array.from({ length: perEpoch }, (_, i) => i + 1));
  for (const p of steps) {
    assert.equal(p.steps, perEpoch);
    assert.deepEqual([p.epoch, p.epochs], [1, 1]);
    assert.ok(Number.isFinite(p.loss) && Number.isFinite(p.etaSeconds) && (p.etaSeconds ?? -1) >= 0, JSON.stringify(p));
  }
  assert.equal(steps.at(-1)?.etaSeconds, 0, 'nothing left after the last step');
  const last = progress.at(-1);
  assert.ok(last && last.step === undefined && last.epoch === 1 && Number.isFinite(last.loss), 'the epoch end comes last');
}

function assertDice(metrics: Record<string, number>) {
  for (const region of ['ET', 'TC', 'WT']) {
    const value = metrics[`dice_${region}`];
    assert.ok(Number.isFinite(value) && value >= 0 && value <= 1, `dice_${region} = ${value}`);
  }
}

test('a round trains on the usable cases, returns new weights of the manifest shapes and evaluates them; later rounds reuse the cached cases', async () => {
  const site = trainer();
  assert.deepEqual(await site.caseCounts(), { train: 3, validation: 1 });

  const progress: TrainerProgress[] = [];
  const first = await train(site, 0, (p) => progress.push(p));
  assert.equal(first.numCases, 3, 'the folder without a mask is not counted');
  assertStepProgress(progress);
  assert.deepEqual(first.weights.map((t) => [t.name, t.shape]), global.map((t) => [t.name, t.shape]));
  assert.ok(maxAbsDifference(first.weights, global) > 0, 'training moved the weights');
  assert.ok(Number.isFinite(first.metrics.loss));

  // Held-out scoring on the original grid: Dice and HD95 per region, the same every time.
  const evaluation = await site.evaluate({ config: tinyConfig, weights: first.weights, signal: new AbortController().signal });
  assert.equal(evaluation.numCases, 1);
  assertDice(evaluation.metrics);
  for (const region of ['ET', 'TC', 'WT']) assert.ok(evaluation.metrics[`hd95_${region}`] >= 0, `hd95_${region}`);
  assert.deepEqual(await site.evaluate({ config: tinyConfig, weights: first.weights, signal: new AbortController().signal }), evaluation);

  // The training cases are in memory now: with their folder gone, a second round still runs and
  // gives the same weights as the first (same start, same seed), so nothing was read again.
  await rm(trainDir, { recursive: true });
  const second = await train(site, 0);
  assert.equal(second.numCases, 3);
  assert.deepEqual(second.weights, first.weights);

  // FedProx: the same round from the same start with mu > 0 is pulled back toward the global model.
  const proximal = await train(site, 50);
  assert.equal(proximal.numCases, 3);
  assert.ok(maxAbsDifference(proximal.weights, first.weights) > 0, 'mu > 0 changes the update');
  assert.ok(maxAbsDifference(proximal.weights, global) > 0);
});
