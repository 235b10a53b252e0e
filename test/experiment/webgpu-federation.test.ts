/**
 * A federation with one site training on webgpu (in a worker thread, as `fedseg site --thread-per-round`
 * runs it) and the other on the cpu backend ends within a stated tolerance of the all-cpu federation:
 * a GPU site's update is as good as a CPU site's. On SwiftShader in CI; skipped with the reason
 * where no WebGPU adapter exists.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createStrategy } from '../../core/federation/strategies/index.js';
import { makeModelConfig } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { cropOrigin, cropShape, DEFAULT_CROP } from '../../core/preprocess/index.js';
import { generateCase, siteProfile, trainingCaseId, writeCaseFolder } from '../../core/synth/index.js';
import { initBackend } from '../../core/tf/backend.js';
import { simulateFederation, type SimulatedSite } from '../../experiment/simulate.js';
import { createIsolatedTrainer } from '../../site/isolated-trainer.js';
import { createDataDirTrainer, type DataDirTrainerOptions } from '../../site/trainer.js';
import { tempDir } from '../server/helpers.js';
import { on } from '../tf/test-backends.js';

const GRID = 16;
const SITES = [1, 3];
const tmp = tempDir('webgpu-federation');
const preprocess = { crop: { i: [0, GRID] as [number, number], j: [0, GRID] as [number, number], k: [0, GRID] as [number, number] } };
const config = makeModelConfig({ arch: 'unet', baseFilters: 4, depth: 3, inputShape: [GRID, GRID, GRID] });

before(async () => {
  await initBackend('cpu');
  for (const site of SITES) {
    for (let index = 0; index < 3; index++) {
      const id = trainingCaseId(site * 10 + index);
      const raw = generateCase(7, siteProfile(7, site), index, { dims: [GRID, GRID, GRID], fov: { start: cropOrigin(DEFAULT_CROP), size: cropShape(DEFAULT_CROP) }, grade: 'high' });
      await writeCaseFolder(join(tmp.dir, `site-${site}`, index < 2 ? 'train' : 'heldout', id), id, raw);
    }
  }
});
after(() => tmp.cleanup());

function siteOptions(site: number, backend: 'cpu' | 'webgpu'): DataDirTrainerOptions {
  return { trainDirs: [join(tmp.dir, `site-${site}`, 'train')], validationDirs: [join(tmp.dir, `site-${site}`, 'heldout')], preprocess, backend };
}

async function federate(gpuSite: number | undefined) {
  const sites: SimulatedSite[] = SITES.map((site) => ({
    name: `site-${site}`,
    trainer: site === gpuSite ? createIsolatedTrainer(siteOptions(site, 'webgpu')) : createDataDirTrainer(siteOptions(site, 'cpu')),
  }));
  const run = await simulateFederation({
    sites, config, strategy: createStrategy({ name: 'fedavg' }), initial: initialWeights(config, 5), rounds: 2,
    local: { epochs: 1, learningRate: 1e-3, batchSize: 1 }, seed: 5, log: () => {},
  });
  return { ...run, backends: sites.map((s) => s.trainer.backend?.() ?? '') };
}

// 2 rounds x 1 epoch x 2 cases = 4 Adam steps per site at lr 1e-3. Adam moves a weight by ~lr per
// step whatever its gradient's size, so where a gradient is ~0 float32 rounding (another summation
// order on the GPU) could flip a step: a tenth of a step (1e-4) per weight, and 1e-3 of the whole
// update (global - initial) in L2 norm. Measured on SwiftShader: 6.9e-7 and 4.1e-6. A wrong kernel
// or gradient gives O(1) relative.
const MAX_ABS = 1e-4;
const MAX_RELATIVE_UPDATE = 1e-3;

test('one site on webgpu and one on cpu give the all-cpu global model after 2 rounds (update within 1e-3 in L2, every weight within 1e-4)', on('webgpu'), async () => {
  const cpu = await federate(undefined);
  const mixed = await federate(1);
  assert.match(mixed.backends[0], /^webgpu .*worker thread/);
  assert.match(mixed.backends[1], /^cpu/);
  const initial = initialWeights(config, 5);
  let worst = 0;
  let diff2 = 0;
  let update2 = 0;
  cpu.global.forEach((t, i) => t.data.forEach((v, j) => {
    const d = v - mixed.global[i].data[j];
    worst = Math.max(worst, Math.abs(d));
    diff2 += d * d;
    update2 += (v - initial[i].data[j]) ** 2;
  }));
  const relative = Math.sqrt(diff2 / update2);
  console.log(`# all-cpu vs mixed: max |difference| ${worst.toExponential(2)}, ||difference|| / ||update|| ${relative.toExponential(2)}`);
  assert.ok(update2 > 0, 'training moved the weights');
  assert.ok(worst < MAX_ABS, `max |all-cpu - mixed| ${worst}`);
  assert.ok(relative < MAX_RELATIVE_UPDATE, `||all-cpu - mixed|| / ||update|| ${relative}`);
  const dice = (r: typeof cpu) => Object.values(r.curve[r.curve.length - 1].perSite).map((s) => s.dice.WT);
  dice(cpu).forEach((d, i) => assert.ok(Math.abs(d - dice(mixed)[i]) < 0.02, `site ${SITES[i]} WT Dice ${d} vs ${dice(mixed)[i]}`));
});
