import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', 'bench', ...args], { encoding: 'utf8' });
}

test('fedseg bench metrics --quick prints its table, then one combined JSON line with its rows', () => {
  const out = fedseg('metrics', '--quick');
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /== bench metrics: .*\nmetrics on 240x240x155/);
  const lines = out.stdout.trim().split('\n');
  const result = JSON.parse(lines[lines.length - 1]);
  assert.equal(result.ok, true);
  assert.equal(result.mode, 'quick');
  assert.equal(result.benches.length, 1);
  const [bench] = result.benches;
  assert.equal(bench.name, 'metrics');
  assert.equal(bench.status, 'ok');
  assert.equal(bench.result.rows.length, 3);
  for (const row of bench.result.rows) {
    assert.ok(row.msPerCase > 0);
    assert.ok(row.wtDice > 0.8 && row.wtDice < 1, `WT Dice ${row.wtDice}`);
  }
});

test('fedseg bench rejects an unknown benchmark name', () => {
  const out = fedseg('warp-drive');
  assert.equal(out.status, 1);
  assert.match(out.stderr, /unknown benchmark "warp-drive"/);
});
