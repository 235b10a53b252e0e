/**
 * The federation learns, for both models, through the site trainer and the server's strategies
 * (in-process rounds, experiment/simulate.ts): the Attention U-Net used to stay at Dice 0 for every
 * round (issue 15). Also: the same seed gives bit-identical global models, and trained attention
 * gates really gate.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createStrategy } from '../../core/federation/strategies/index.js';
import type { TensorList } from '../../core/federation/tensors.js';
import { makeModelConfig, type Architecture } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { SegmentationModel } from '../../core/model/network.js';
import { cropOrigin, cropShape, DEFAULT_CROP, preprocessCase, caseVolumesFromFiles, preprocessConfig } from '../../core/preprocess/index.js';
import { discoverCase } from '../../core/brats/index.js';
import { generateCase, siteProfile, trainingCaseId, writeCaseFolder } from '../../core/synth/index.js';
import { initBackend, tf } from '../../core/tf/backend.js';
import { meanOver, simulateFederation, type SimulatedSite } from '../../experiment/simulate.js';
import { createDataDirTrainer } from '../../site/trainer.js';
import { tempDir } from '../server/helpers.js';

// Cases sampled on a 16^3 grid over the default crop window, read whole: the real preprocess ->
// train -> full-grid evaluation path, a few seconds per federation.
const GRID = 16;
const tmp = tempDir('federation-learns');
const preprocess = { crop: { i: [0, GRID] as [number, number], j: [0, GRID] as [number, number], k: [0, GRID] as [number, number] } };
const SITES = [1, 3];

async function writeSite(site: number): Promise<void> {
  for (let index = 0; index < 4; index++) {
    const id = trainingCaseId(site * 10 + index);
    const raw = generateCase(7, siteProfile(7, site), index, { dims: [GRID, GRID, GRID], fov: { start: cropOrigin(DEFAULT_CROP), size: cropShape(DEFAULT_CROP) }, grade: 'high' });
    await writeCaseFolder(join(tmp.dir, `site-${site}`, index < 3 ? 'train' : 'heldout', id), id, raw);
  }
}

before(async () => {
  await initBackend('cpu');
  for (const site of SITES) await writeSite(site);
});
after(() => tmp.cleanup());

function sites(): SimulatedSite[] {
  return SITES.map((site) => ({
    name: `site-${site}`,
    trainer: createDataDirTrainer({ trainDirs: [join(tmp.dir, `site-${site}`, 'train')], validationDirs: [join(tmp.dir, `site-${site}`, 'heldout')], preprocess, backend: 'cpu' }),
  }));
}

const config = (arch: Architecture) => makeModelConfig({ arch, baseFilters: 8, depth: 3, inputShape: [GRID, GRID, GRID] });

const runs = new Map<string, ReturnType<typeof simulate>>();
/** One federation per (model, seed), shared by the tests that read it. */
function federate(arch: Architecture, seed: number) {
  const key = `${arch}/${seed}`;
  if (!runs.has(key)) runs.set(key, simulate(arch, seed));
  return runs.get(key)!;
}

async function simulate(arch: Architecture, seed: number) {
  const c = config(arch);
  return simulateFederation({
    sites: sites(), config: c, strategy: createStrategy({ name: 'fedavg' }), initial: initialWeights(c, seed), rounds: 3,
    local: { epochs: 8, learningRate: 1e-3, batchSize: 1 }, seed, log: () => {},
  });
}

for (const arch of ['unet', 'attention-unet'] as const) {
  test(`a federated ${arch} improves its held-out WT Dice over the rounds`, async () => {
    const { curve } = await federate(arch, 5);
    const wt = curve.map((r) => meanOver(r.perSite).dice.WT);
    assert.ok(wt[2] > wt[0] + 0.05, `WT Dice per round: ${wt.map((v) => v.toFixed(3)).join(' -> ')}`);
  });
}

test('the same seed on the same backend gives bit-identical global models', async () => {
  const [a, b] = [await federate('attention-unet', 5), await simulate('attention-unet', 5)];
  const same = (x: TensorList, y: TensorList) => x.every((t, i) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(y[i].data.buffer, y[i].data.byteOffset, y[i].data.byteLength)));
  assert.ok(same(a.global, b.global), 'global models differ between two runs with the same seed');
  assert.deepEqual(a.curve, b.curve);
});

test('trained attention gates gate: coefficients are neither all closed nor all open', async () => {
  const { global } = await federate('attention-unet', 5);
  const model = new SegmentationModel(config('attention-unet'), global);
  const caseDir = join(tmp.dir, 'site-1', 'heldout', trainingCaseId(13));
  const item = await preprocessCase(caseVolumesFromFiles(await discoverCase(caseDir), preprocessConfig(preprocess), { ignoreMask: true }), preprocessConfig(preprocess));
  const stats: Array<{ level: number; min: number; max: number; sd: number }> = [];
  tf.tidy(() => {
    model.logits(tf.tensor5d(item.image.data, [1, GRID, GRID, GRID, 3]), {
      onAttention: (level, alpha) => {
        const values = Array.from(alpha.dataSync());
        const mean = values.reduce((s, v) => s + v, 0) / values.length;
        stats.push({ level, min: Math.min(...values), max: Math.max(...values), sd: Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length) });
      },
    });
  });
  model.dispose();
  assert.equal(stats.length, 2, 'one gate per skip connection');
  for (const s of stats) {
    assert.ok(s.max > 0.05 && s.min < 0.95 && s.sd > 0.01, `gate at level ${s.level} is constant: ${JSON.stringify(s)}`);
  }
});
