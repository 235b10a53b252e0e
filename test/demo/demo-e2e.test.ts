import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DemoReportSchema } from '../../core/report/index.js';
import { ensureDemoData } from '../../demo/data.js';

const out = mkdtempSync(join(tmpdir(), 'fedseg-demo-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('a tiny demo (2 sites, 2 rounds, baselines) runs server + site processes and writes report.json and report.html', () => {
  const run = spawnSync(process.execPath, [
    'bin/fedseg.js', 'demo', '--out', out, '--sites', '2', '--rounds', '2', '--cases', '2', '--held-out', '1',
    '--downsample', '8', '--base-filters', '2', '--depth', '2', '--local-epochs', '1', '--seed', '11', '--baselines', '--json',
  ], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(run.status, 0, `${run.stderr}\n${run.stdout}`);
  const printed = JSON.parse(run.stdout);
  assert.equal(printed.ok, true);
  // Progress and the per-round table went to stderr, keeping stdout one JSON document.
  assert.match(run.stderr, /^round +sites returned +ET Dice +TC Dice +WT Dice +round time +peak RSS server \/ largest site$/m);

  const report = DemoReportSchema.parse(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')));
  assert.deepEqual(report.rounds.map((r) => r.round), [1, 2]);
  for (const round of report.rounds) {
    assert.deepEqual([...round.sitesReturned].sort(), ['site-1', 'site-2']);
    for (const region of ['ET', 'TC', 'WT'] as const) {
      const dice = round.dice[region];
      assert.ok(dice !== null && dice >= 0 && dice <= 1, `round ${round.round} ${region} Dice ${dice}`);
    }
    assert.deepEqual(Object.keys(round.perSite).sort(), ['site-1', 'site-2']);
    assert.equal(round.perSite['site-1'].cases, 1);
    const hd95 = round.hd95?.WT;
    assert.ok(hd95 !== undefined && hd95 !== null && hd95 >= 0 && hd95 <= 373.13, `round ${round.round} WT HD95 ${hd95}`);
  }
  // Unequal hospitals: each site holds its profile's share of the mean case count (site 1 more than site 2).
  assert.deepEqual(report.settings.trainCasesPerSite, { 'site-1': 2, 'site-2': 2 });
  assert.ok(report.rounds.every((r) => r.peakRssMiB === undefined || (r.peakRssMiB.server > 0 && r.peakRssMiB.largestSite > 0)));
  assert.ok(report.baselines, 'baselines missing');
  assert.deepEqual(Object.keys(report.baselines.localOnly).sort(), ['site-1', 'site-2']);
  assert.deepEqual(Object.keys(report.baselines.centralised).sort(), ['site-1', 'site-2']);
  assert.match(report.baselines.budget, /^2 epoch\(s\)/);
  assert.deepEqual(report.comparison?.map((row) => [row.method, row.strategy, row.model, row.seed]), [
    ['federated', 'fedavg', 'unet', 11], ['local-only', 'none', 'unet', 11], ['centralised', 'none', 'unet', 11],
  ]);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.equal((html.match(/<svg /g) ?? []).length, 1 + 1 + 3 + 2); // Dice, HD95, per site x3, baselines x2
  assert.match(html, /federated vs local-only vs centralised/);
  assert.match(html, /data:image\/png;base64,/);
  // Everything stays under --out: data, server state, logs.
  for (const path of ['data/demo-data.json', 'data/site-1/train', 'data/site-2/heldout', 'server/federation.sqlite', 'server/checkpoints/round-00002.fsm', 'logs/server.log', 'logs/site-1.log']) {
    assert.ok(existsSync(join(out, path)), `${path} is missing`);
  }
  // The server process logged both aggregations; each site process logged its exit after "done".
  assert.match(readFileSync(join(out, 'logs/server.log'), 'utf8'), /round 2: aggregated 2 update/);
  assert.match(readFileSync(join(out, 'logs/site-2.log'), 'utf8'), /"type":"exit","outcome":"finished"/);
});

test('a second run reuses the generated data', async () => {
  const lines: string[] = [];
  const again = await ensureDemoData({ dataDir: join(out, 'data'), sites: 2, casesPerSite: 2, heldOutPerSite: 1, seed: 11 }, (l) => lines.push(l));
  assert.equal(again.generated, false);
  assert.deepEqual(again.sites.map((s) => s.heldOut.length), [1, 1]);
  assert.match(lines.join('\n'), /reusing/);
});
