import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateCase, generateMiniCase, deriveSeed, Prng, siteProfile, type SyntheticCase } from '../../core/synth/index.js';

const SMALL = { dims: [60, 60, 40] as const, fov: { start: [0, 0, 0] as const, size: [240, 240, 155] as const } };

test('the PRNG is deterministic, uniform in [0, 1), and seeds derived from different parts differ', () => {
  const a = new Prng(42);
  const b = new Prng(42);
  const draws = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(draws, Array.from({ length: 1000 }, () => b.next()));
  assert.ok(draws.every((x) => x >= 0 && x < 1));
  const mean = draws.reduce((s, x) => s + x, 0) / draws.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05);
  assert.notEqual(deriveSeed(1, 2, 3), deriveSeed(1, 3, 2));
  assert.notEqual(deriveSeed(1, 1, 0), deriveSeed(2, 1, 0));
});

test('the same seed gives identical volumes; another seed or case gives different ones', () => {
  const profile = siteProfile(7, 2);
  const first = generateCase(7, profile, 3, SMALL);
  const second = generateCase(7, siteProfile(7, 2), 3, SMALL);
  for (const m of ['flair', 't1', 't1ce', 't2'] as const) assert.deepEqual(first.modalities[m], second.modalities[m]);
  assert.deepEqual(first.seg, second.seg);
  assert.notDeepEqual(generateCase(8, siteProfile(8, 2), 3, SMALL).seg, first.seg);
  assert.notDeepEqual(generateCase(7, profile, 4, SMALL).seg, first.seg);
});

/** Mean intensity of `modality` over voxels where `select(label)` holds. */
function meanWhere(c: SyntheticCase, modality: keyof SyntheticCase['modalities'], select: (label: number, value: number) => boolean): number {
  let sum = 0;
  let count = 0;
  const t1 = c.modalities.t1;
  c.seg.forEach((label, n) => {
    if (select(label, t1[n])) {
      sum += c.modalities[modality][n];
      count++;
    }
  });
  assert.ok(count > 0, 'region is not empty');
  return sum / count;
}

test('tissue contrast per modality: edema bright on FLAIR/T2, rim bright and necrosis dark on T1ce', () => {
  const c = generateCase(1, siteProfile(1, 1), 0, { dims: [120, 120, 78], fov: SMALL.fov });
  // Healthy brain: inside the head, no tumour label. Background stays exactly 0 (skull-stripped).
  const healthy = (label: number, t1: number) => label === 0 && t1 > 0;
  const brain = meanWhere(c, 'flair', healthy);
  assert.ok(meanWhere(c, 'flair', (l) => l === 2) > 1.5 * brain, 'edema bright on FLAIR');
  assert.ok(meanWhere(c, 't2', (l) => l === 2) > 1.4 * meanWhere(c, 't2', healthy), 'edema bright on T2');
  assert.ok(meanWhere(c, 't1ce', (l) => l === 4) > 1.4 * meanWhere(c, 't1ce', healthy), 'rim bright on T1ce');
  assert.ok(meanWhere(c, 't1ce', (l) => l === 1) < 0.5 * meanWhere(c, 't1ce', (l) => l === 4), 'necrosis dark on T1ce');
  const background = c.modalities.flair.filter((v, n) => c.modalities.t1[n] === 0);
  assert.ok(background.length > 0.4 * c.seg.length && background.every((v) => v === 0));
  assert.ok(c.seg.every((l) => l === 0 || l === 1 || l === 2 || l === 4));
});

test('sites differ like scanners: gain, noise, bias and tumour size', () => {
  const profiles = [1, 2, 3, 4, 5].map((s) => siteProfile(1, s));
  assert.equal(new Set(profiles.map((p) => p.scanner)).size, 5);
  assert.ok(profiles[2].gain.t2 > 2 * profiles[1].gain.t2);
  assert.ok(profiles[1].noiseSigma > 1.5 * profiles[0].noiseSigma);
  assert.ok(profiles[3].biasAmplitude > 2 * profiles[4].biasAmplitude);
  assert.ok(profiles[0].tumourRadius[0] > profiles[1].tumourRadius[1]);
  const brightness = [2, 3].map((s) => {
    const c = generateCase(1, siteProfile(1, s), 0, SMALL);
    return meanWhere(c, 't2', (l, t1) => l === 0 && t1 > 0);
  });
  assert.ok(brightness[1] > 2 * brightness[0], 'site 3 scanner reads much brighter than site 2');
  assert.deepEqual(siteProfile(1, 6).tumourRadius, profiles[0].tumourRadius, 'sites beyond five reuse the templates');
});

test('a mini case is a preprocessed crop: [n, n, n, 3] in [0, 1] with all four classes, deterministic', async () => {
  const mini = await generateMiniCase({ size: 32, seed: 3 });
  assert.deepEqual(mini.image.shape, [32, 32, 32, 3]);
  assert.ok(mini.image.data.every((v) => v >= 0 && v <= 1));
  const counts = [0, 0, 0, 0];
  mini.classes!.data.forEach((cls) => counts[cls]++);
  assert.ok(counts.every((n) => n > 0), `every class present: ${counts}`);
  assert.ok(mini.tumourFraction! > 0.01);
  const again = await generateMiniCase({ size: 32, seed: 3 });
  assert.deepEqual(again.image.data, mini.image.data);
  const t1 = await generateMiniCase({ size: 24, config: { channels: ['flair', 't1', 't1ce', 't2'], scaling: 'per-slice' } });
  assert.deepEqual(t1.image.shape, [24, 24, 24, 4]);
});

test('grades: a lower-grade glioma has a non-enhancing core and no enhancing tumour; a high-grade one has both', () => {
  const low = generateCase(4, siteProfile(4, 2), 1, { ...SMALL, grade: 'low' });
  const high = generateCase(4, siteProfile(4, 2), 1, { ...SMALL, grade: 'high' });
  assert.ok(!low.seg.includes(4) && low.seg.includes(1) && low.seg.includes(2));
  assert.ok(high.seg.includes(4) && high.seg.includes(1));
  // The non-enhancing core does not light up on T1ce the way an enhancing rim does.
  assert.ok(meanWhere(low, 't1ce', (l) => l === 1) < 0.8 * meanWhere(high, 't1ce', (l) => l === 4));
});

test('scanner contrast and slice thickness survive min-max scaling: sites differ in gamma and through-plane blur', () => {
  const profiles = [1, 2, 3].map((s) => siteProfile(1, s));
  assert.ok(profiles[2].gamma.flair > 1.6 * profiles[1].gamma.flair, 'research scanner has a steeper contrast curve');
  assert.equal(profiles[1].sliceThickness, 5);
  // Neighbouring slices along k are far more alike on the 5 mm site than on the 1 mm site (same anatomy seed).
  const roughness = (c: SyntheticCase) => {
    const [nx, ny, nz] = c.dims;
    let sum = 0;
    let count = 0;
    for (let k = 1; k < nz; k++) {
      for (let n = 0; n < nx * ny; n++) {
        const a = c.modalities.t2[n + k * nx * ny];
        const b = c.modalities.t2[n + (k - 1) * nx * ny];
        if (a > 0 && b > 0) {
          sum += Math.abs(a - b) / (a + b);
          count++;
        }
      }
    }
    return sum / count;
  };
  const full = { dims: [96, 96, 155] as const, fov: SMALL.fov };
  assert.ok(roughness(generateCase(1, profiles[1], 0, full)) < 0.6 * roughness(generateCase(1, { ...profiles[1], sliceThickness: 1 }, 0, full)));
});
