import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { preprocessToMeta } from '../../core/inference/preprocess-meta.js';
import { predictVolume, windowStarts } from '../../core/inference/sliding-window.js';
import { segmentCase, tumourVolumes, voxelVolumeMl } from '../../core/inference/segment.js';
import { makeModelConfig } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { createModel } from '../../core/model/network.js';
import { readNifti } from '../../core/nifti/index.js';
import { preprocessConfig } from '../../core/preprocess/config.js';
import { averagePool, createCaseTensor, upsampleArgmax } from '../../core/preprocess/index.js';
import { generateCase, generateMiniCase, siteProfile, writeCaseFolder } from '../../core/synth/index.js';
import { initBackend, tf } from '../../core/tf/backend.js';
import { saveModelFile } from '../../core/weights/index.js';
import { on } from '../tf/test-backends.js';

let dir: string;
let caseDir: string;
let modelPath: string;
// Tiny model: inference over the 128^3 crop stays a few seconds on 2 cores.
const config = makeModelConfig({ baseFilters: 2, depth: 2, inputShape: [64, 64, 64] });

before(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'fedseg-segment-'));
  caseDir = join(dir, 'BraTS20_Training_001');
  await writeCaseFolder(caseDir, 'BraTS20_Training_001', generateCase(3, siteProfile(3, 1), 0));
  modelPath = join(dir, 'model.fsm');
  // Bias the head towards tumour classes so the untrained model predicts every label somewhere.
  const weights = initialWeights(config, 4).map((w) => (w.name === 'head.bias' ? { ...w, data: Float32Array.from([0, 0, 0, 1.5]) } : w));
  await saveModelFile(modelPath, config, weights, preprocessToMeta(preprocessConfig()));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8', env: { ...process.env, FEDSEG_BACKEND: 'cpu' } });
}

test('window starts cover the axis evenly, first at 0 and last flush with the end', () => {
  assert.deepEqual(windowStarts(128, 64, 0.5), [0, 32, 64]);
  assert.deepEqual(windowStarts(128, 64, 0), [0, 64]);
  assert.deepEqual(windowStarts(100, 64, 0.5), [0, 18, 36]);
  assert.deepEqual(windowStarts(16, 32, 0.5), [0]);
});

test('a single window covering the volume gives exactly the argmax of one forward pass', async () => {
  const mini = await generateMiniCase({ size: 16 });
  const model = createModel(makeModelConfig({ baseFilters: 4, depth: 3, inputShape: [16, 16, 16] }), 2);
  const classes = await predictVolume(model, mini.image);
  const direct = tf.tidy(() => tf.argMax(model.predict(tf.tensor5d(mini.image.data, [1, 16, 16, 16, 3])), -1).dataSync());
  assert.deepEqual(Array.from(classes.data), Array.from(direct));
  // Overlapping windows blend into a full-size class map.
  const tiled = await predictVolume(model, mini.image, { window: [8, 8, 8], overlap: 0.5, batchSize: 4 });
  assert.deepEqual(tiled.shape, [16, 16, 16]);
  assert.ok(tiled.data.every((c) => c <= 3));
  // 27 windows: batches of 4 (the last one partial) give the one-by-one result.
  const single = await predictVolume(model, mini.image, { window: [8, 8, 8], overlap: 0.5, batchSize: 1 });
  assert.deepEqual(Array.from(tiled.data), Array.from(single.data));
  model.dispose();
});

test('webgpu: sliding-window inference with overlapping windows gives the cpu backend\'s class map', on('webgpu'), async () => {
  const mini = await generateMiniCase({ size: 16 });
  const classMap = async (backend: 'cpu' | 'webgpu') => {
    await initBackend(backend);
    const model = createModel(makeModelConfig({ baseFilters: 4, depth: 3, inputShape: [16, 16, 16] }), 2);
    const { data } = await predictVolume(model, mini.image, { window: [8, 8, 8], overlap: 0.5, batchSize: 4 });
    model.dispose();
    return data;
  };
  const cpu = await classMap('cpu');
  const gpu = await classMap('webgpu');
  await initBackend('cpu');
  // Probabilities agree to float32 rounding; only a voxel whose two best classes tie to ~1e-6 could flip.
  const differing = cpu.filter((c, i) => c !== gpu[i]).length;
  assert.ok(differing <= cpu.length / 1000, `${differing} of ${cpu.length} voxels differ`);
});

test('a model with downsample f sees the crop block-averaged by f and answers on the crop grid (trilinear on its probabilities)', async () => {
  const mini = await generateMiniCase({ size: 32 });
  const model = createModel(makeModelConfig({ baseFilters: 4, depth: 3, inputShape: [16, 16, 16], downsample: 2 }), 2);
  const classes = await predictVolume(model, mini.image);
  assert.deepEqual(classes.shape, [32, 32, 32]);
  const reduced = averagePool(mini.image, 2);
  const probs = tf.tidy(() => model.predict(tf.tensor5d(reduced.data, [1, 16, 16, 16, 3])).dataSync() as Float32Array);
  assert.deepEqual(Array.from(classes.data), Array.from(upsampleArgmax(probs, [16, 16, 16], 4, 2).data));
  await assert.rejects(predictVolume(model, createCaseTensor([17, 17, 17, 3])), /field downsample: the model reads the crop downsampled x2, which must divide the crop 17x17x17/);
  model.dispose();
});

test('tumour volumes follow the BraTS regions and the voxel size', () => {
  const labels = Uint8Array.from([0, 1, 2, 4, 4, 2, 2]);
  const affine = [[-2, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1.5, 0], [0, 0, 0, 1]];
  assert.equal(voxelVolumeMl(affine), 0.003);
  const v = tumourVolumes(labels, 0.003);
  assert.ok(Math.abs(v.ET - 0.006) < 1e-12 && Math.abs(v.TC - 0.009) < 1e-12 && Math.abs(v.WT - 0.018) < 1e-12);
});

test('segmentCase maps the prediction back to the 240x240x155 grid with labels 0/1/2/4 only', async () => {
  const model = createModel(config, 4);
  model.setWeights(initialWeights(config, 4).map((w) => (w.name === 'head.bias' ? { ...w, data: Float32Array.from([0, 0, 0, 1.5]) } : w)));
  const result = await segmentCase(model, caseDir, preprocessConfig(), { window: [128, 128, 128] });
  assert.deepEqual(result.dims, [240, 240, 155]);
  const present = new Set(result.labels);
  assert.ok([...present].every((l) => [0, 1, 2, 4].includes(l)), `labels ${[...present]}`);
  assert.ok(present.has(4) && present.has(0), 'the test model predicts tumour and background');
  // Outside the crop [56:184, 56:184, 13:141] everything is background.
  assert.equal(result.labels[0], 0);
  assert.equal(result.labels[(200 + 240 * 200) + 240 * 240 * 150], 0);
  assert.deepEqual(result.volumesMl, tumourVolumes(result.labels, 0.001));
  model.dispose();
});

test('fedseg segment writes a valid NIfTI mask with the case affine and prints volumes as JSON', async () => {
  const out = join(dir, 'pred.nii.gz');
  const run = fedseg('segment', '--model', modelPath, '--case', caseDir, '--out', out, '--window', '128', '--json');
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.ok, true);
  assert.deepEqual(report.dims, [240, 240, 155]);
  const mask = await readNifti(out);
  const source = await readNifti(join(caseDir, 'BraTS20_Training_001_flair.nii.gz'));
  assert.deepEqual(mask.header.dims, [240, 240, 155]);
  assert.equal(mask.header.datatype.name, 'uint8');
  assert.deepEqual(mask.header.affine, source.header.affine);
  assert.ok(mask.data instanceof Uint8Array);
  assert.ok([...new Set(mask.data)].every((l) => [0, 1, 2, 4].includes(l)));
  assert.deepEqual(report.volumesMl, tumourVolumes(mask.data, 0.001));
  assert.match(fedseg('segment', '--model', modelPath, '--case', caseDir, '--out', out, '--window', '128').stdout, /tumour volume: WT [\d.]+ mL, TC [\d.]+ mL, ET [\d.]+ mL/);
});

test('a missing modality, a corrupt model and a wrong output name fail clearly and write nothing', async () => {
  const broken = join(dir, 'BraTS20_Training_002');
  await writeCaseFolder(broken, 'BraTS20_Training_002', generateCase(3, siteProfile(3, 1), 1));
  await rm(join(broken, 'BraTS20_Training_002_t1ce.nii.gz'));
  const out = join(dir, 'missing.nii.gz');
  const missing = fedseg('segment', '--model', modelPath, '--case', broken, '--out', out);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /case BraTS20_Training_002: .*BraTS20_Training_002_t1ce\.nii\.gz: missing t1ce modality/);

  const corrupt = join(dir, 'corrupt.fsm');
  const bytes = await readFile(modelPath);
  bytes[bytes.length - 50] ^= 0xff;
  await writeFile(corrupt, bytes);
  const bad = fedseg('segment', '--model', corrupt, '--case', caseDir, '--out', out, '--json');
  assert.equal(bad.status, 1);
  assert.match(JSON.parse(bad.stdout).error, /corrupt\.fsm: SHA-256 mismatch/);

  assert.match(fedseg('segment', '--model', modelPath, '--case', caseDir, '--out', join(dir, 'x.png')).stderr, /must end in \.nii or \.nii\.gz/);
  const left = (await readdir(dir)).filter((f) => f.startsWith('missing') || f.startsWith('x.png') || f.includes('.tmp'));
  assert.deepEqual(left, []);
});
