import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateCase, siteProfile, writeCaseFolder } from '../../core/synth/index.js';
import { loadModelFile } from '../../core/weights/index.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedseg-train-cli-'));
  for (const n of [1, 2]) {
    const id = `BraTS20_Training_00${n}`;
    await writeCaseFolder(join(dir, 'site-1', id), id, generateCase(9, siteProfile(9, 1), n));
  }
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8', env: { ...process.env, FEDSEG_BACKEND: 'cpu' } });
}

test('fedseg train writes a model file carrying the architecture and preprocessing, and reports JSON', async () => {
  const out = join(dir, 'model.fsm');
  const run = fedseg('train', '--data', join(dir, 'site-1'), '--model', 'attention-unet', '--epochs', '1', '--patch', '16', '--base-filters', '2',
    '--depth', '2', '--lr', '1e-3', '--validation', '0.5', '--out', out, '--json');
  assert.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.trainCases.length, 1);
  assert.equal(report.validationCases.length, 1);
  assert.match(run.stderr, /epoch 1\/1 done in .*validation loss/);
  const model = await loadModelFile(out);
  assert.equal(model.config.arch, 'attention-unet');
  assert.deepEqual(model.config.inputShape, [16, 16, 16]);
  assert.equal(model.meta['preprocess.channels'], 'flair,t1ce,t2');
  assert.equal(model.meta.epoch, 1);
  assert.deepEqual((await readdir(dir)).sort(), ['model.fsm', 'site-1']);
});

test('fedseg train --downsample trains at the reduced resolution and records it in the model', async () => {
  const out = join(dir, 'model-4mm.fsm');
  const run = fedseg('train', '--data', join(dir, 'site-1'), '--epochs', '1', '--downsample', '4', '--patch', '16', '--base-filters', '2',
    '--depth', '2', '--validation', '0', '--out', out, '--json');
  assert.equal(run.status, 0, run.stderr);
  const model = await loadModelFile(out);
  assert.equal(model.config.downsample, 4);
  assert.deepEqual(model.config.inputShape, [16, 16, 16]);
  await rm(out);
  assert.match(fedseg('train', '--data', join(dir, 'site-1'), '--downsample', '4', '--patch', '64', '--depth', '2', '--out', out).stderr, /patch 64x64x64 is larger than the preprocessed case \(32x32x32\)/);
});

test('bad training input fails with exit 1 and a message naming what is wrong', () => {
  const out = join(dir, 'never.fsm');
  const noCases = fedseg('train', '--data', join(dir, 'missing'), '--out', out);
  assert.equal(noCases.status, 1);
  assert.match(noCases.stderr, /missing: dataset folder does not exist/);
  assert.match(fedseg('train', '--data', join(dir, 'site-1'), '--model', 'vnet', '--out', out).stderr, /--model must be one of unet, attention-unet, got "vnet"/);
  assert.match(fedseg('train', '--data', join(dir, 'site-1'), '--patch', '18', '--depth', '3', '--out', out).stderr, /18 is not divisible by 2\^\(depth-1\) = 4/);
  assert.match(fedseg('train', '--data', join(dir, 'site-1')).stderr, /--out FILE is required/);
});
