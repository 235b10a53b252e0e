import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DemoReportSchema } from '../../core/report/index.js';
import { epsilonAfter, noiseMultiplierFor } from '../../core/privacy/accountant.js';

const out = mkdtempSync(join(tmpdir(), 'fedseg-demo-dp-'));
const secureOut = mkdtempSync(join(tmpdir(), 'fedseg-demo-dp-secagg-'));
after(() => rmSync(secureOut, { recursive: true, force: true }));
after(() => rmSync(out, { recursive: true, force: true }));

test('demo --dp-epsilon 8 runs end to end: sigma calibrated for the rounds, clipped updates, epsilon within the target in report.json', () => {
  const run = spawnSync(process.execPath, [
    'bin/fedseg.js', 'demo', '--out', out, '--sites', '2', '--rounds', '2', '--cases', '2', '--held-out', '1',
    '--downsample', '8', '--base-filters', '2', '--depth', '2', '--local-epochs', '1', '--seed', '11', '--dp-epsilon', '8', '--dp-clip', '0.5', '--json',
  ], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(run.status, 0, `${run.stderr}\n${run.stdout}`);
  const report = DemoReportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
  assert.deepEqual(report.rounds.map((r) => r.round), [1, 2]);
  const sigma = noiseMultiplierFor(8, 1e-5, 2, 1);
  assert.deepEqual(report.privacy, {
    secureAggregation: false, clip: 0.5, noiseMultiplier: sigma, delta: 1e-5, rounds: 2, samplingRate: 1,
    epsilon: epsilonAfter({ noiseMultiplier: sigma, samplingRate: 1 }, 2, 1e-5),
  });
  assert.ok(report.privacy.epsilon <= 8 && report.privacy.epsilon > 7.99, `epsilon ${report.privacy.epsilon}`);
  const serverLog = readFileSync(join(out, 'logs/server.log'), 'utf8');
  assert.match(serverLog, /round 2: differential privacy \(central\): \d of 2 update\(s\) clipped to 0\.5, noise std [\d.]+ per parameter of the average \(D = 2\); epsilon spent [\d.]+ at delta 0\.00001 of the budget 8/);
  assert.match(run.stderr, /differential privacy: epsilon 8 at delta 0\.00001 over 2 rounds needs noise multiplier/);
});

test('demo --secure-aggregation --dp-epsilon 8 runs end to end: the sites add the noise under masking, report.json records secureAggregation', () => {
  const run = spawnSync(process.execPath, [
    'bin/fedseg.js', 'demo', '--out', secureOut, '--sites', '3', '--rounds', '2', '--cases', '2', '--held-out', '1',
    '--downsample', '8', '--base-filters', '2', '--depth', '2', '--local-epochs', '1', '--seed', '11', '--secure-aggregation', '--dp-epsilon', '8', '--json',
  ], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(run.status, 0, `${run.stderr}\n${run.stdout}`);
  const report = DemoReportSchema.parse(JSON.parse(readFileSync(join(secureOut, 'report.json'), 'utf8')));
  assert.deepEqual(report.rounds.map((r) => r.round), [1, 2]);
  const sigma = noiseMultiplierFor(8, 1e-5, 2, 1);
  assert.deepEqual(report.privacy, {
    secureAggregation: true, clip: 1, noiseMultiplier: sigma, delta: 1e-5, rounds: 2, samplingRate: 1,
    epsilon: epsilonAfter({ noiseMultiplier: sigma, samplingRate: 1 }, 2, 1e-5),
  });
  // Threshold 2 of 3 sites: each adds sigma C / sqrt(2); three survivors carry 3/2 of sigma^2 C^2, over D = 3.
  const serverLog = readFileSync(join(secureOut, 'logs/server.log'), 'utf8');
  assert.match(serverLog, /round 2: secure aggregation among site-1, site-2, site-3 \(threshold 2, \d+ fractional bits\)/);
  const noiseStd = Number(/round 2: differential privacy \(distributed\): 3 site-clipped, site-noised input\(s\), noise std ([\d.e-]+) per parameter of the average \(D = 3\)/.exec(serverLog)?.[1]);
  assert.ok(Math.abs(noiseStd - (sigma * Math.sqrt(3 / 2)) / 3) < 5e-3 * noiseStd, `server log: ${serverLog.split('\n').filter((l) => l.includes('privacy')).join('\n')}`);
});
