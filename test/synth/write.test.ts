import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { emptyClinicalInfo, parseSurvival } from '../../core/brats/index.js';
import { generateCase, nameMappingCsv, siteProfile, survivalInfoCsv, trainingCaseId, writeCaseFolder, writeSyntheticDataset } from '../../core/synth/index.js';

const root = mkdtempSync(join(tmpdir(), 'fedseg-synth-'));
after(() => rmSync(root, { recursive: true, force: true }));
const SMALL = { dims: [24, 24, 16] as const, fov: { start: [0, 0, 0] as const, size: [240, 240, 155] as const } };

test('case ids are BraTS 2020 training ids and the name mapping has the BraTS header', () => {
  assert.equal(trainingCaseId(7), 'BraTS20_Training_007');
  assert.equal(trainingCaseId(123), 'BraTS20_Training_123');
  assert.equal(nameMappingCsv(['a', 'b']).split('\n')[2], 'HGG,NA,NA,NA,NA,b');
});

test('survival_info.csv parses as the BraTS file does, with one ALIVE entry', () => {
  const info = emptyClinicalInfo();
  parseSurvival(survivalInfoCsv(['c1', 'c2', 'c3'], 1, 1), 'survival_info.csv', info);
  assert.equal(info.survival.size, 3);
  assert.equal(info.survival.get('c3')?.alive, true);
  assert.equal(info.survival.get('c1')?.alive, false);
  assert.ok((info.survival.get('c1')?.age ?? 0) >= 35);
});

test('a case whose write fails leaves no case folder and no staging folder', async () => {
  const good = generateCase(1, siteProfile(1, 1), 0, SMALL);
  const broken = { ...good, seg: good.seg.subarray(1) }; // modalities write fine, the mask does not
  const caseDir = join(root, 'fail', 'BraTS20_Training_001');
  await assert.rejects(writeCaseFolder(caseDir, 'BraTS20_Training_001', broken), FedSegError);
  assert.equal(existsSync(caseDir), false);
  assert.deepEqual(readdirSync(join(root, 'fail')), []);
});

test('rewriting an existing case replaces it whole', async () => {
  const caseDir = join(root, 'again', 'BraTS20_Training_001');
  await writeCaseFolder(caseDir, 'BraTS20_Training_001', generateCase(1, siteProfile(1, 1), 0, SMALL));
  await writeCaseFolder(caseDir, 'BraTS20_Training_001', generateCase(2, siteProfile(2, 1), 0, SMALL));
  assert.equal(readdirSync(caseDir).length, 5);
  assert.deepEqual(readdirSync(join(root, 'again')), ['BraTS20_Training_001']);
});

test('bad counts and seeds are rejected before anything is written', async () => {
  const cases = [[{ sites: 0, casesPerSite: 1, seed: 1 }, 'sites'], [{ sites: 1, casesPerSite: 1.5, seed: 1 }, 'cases'], [{ sites: 1, casesPerSite: 1, seed: -1 }, 'seed']] as const;
  for (const [options, field] of cases) {
    await assert.rejects(
      writeSyntheticDataset({ out: join(root, 'bad'), ...options }),
      (err: unknown) => err instanceof FedSegError && err.where.field === field,
    );
  }
  assert.equal(existsSync(join(root, 'bad')), false);
});

test('a rerun removes staging folders left by a run that was killed mid-case', async () => {
  const out = join(root, 'killed');
  const leftover = join(out, 'site-1', 'BraTS20_Training_001.tmp-99999');
  mkdirSync(leftover, { recursive: true });
  writeFileSync(join(leftover, 'BraTS20_Training_001_flair.nii.gz'), 'partial');
  await writeSyntheticDataset({ out, sites: 1, casesPerSite: 1, seed: 1, grid: SMALL });
  assert.deepEqual(readdirSync(join(out, 'site-1')).sort(), ['BraTS20_Training_001', 'name_mapping.csv', 'survival_info.csv']);
});

test('small-grid datasets are byte-identical for the same seed too', async () => {
  const files = async (out: string) => {
    await writeSyntheticDataset({ out, sites: 2, casesPerSite: 2, seed: 9, grid: SMALL });
    return readdirSync(out, { recursive: true }).map(String).sort().filter((f) => f.endsWith('.gz') || f.endsWith('.csv'))
      .map((f) => [f, readFileSync(join(out, f)).toString('base64')]);
  };
  const first = await files(join(root, 'same-a'));
  assert.equal(first.length, 2 * (2 * 5 + 2));
  assert.deepEqual(await files(join(root, 'same-b')), first);
  assert.ok(first.some(([f]) => f.endsWith('site-2/BraTS20_Training_004/BraTS20_Training_004_seg.nii.gz')), 'case numbers run on across sites');
});
