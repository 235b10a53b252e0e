import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tempDir } from '../server/helpers.js';

const tmp = tempDir('experiment-combine');
after(() => tmp.cleanup());

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

test('experiment --combine names the file at fault: missing, not JSON, not a report; and needs a folder', () => {
  const [missing, garbled, wrong] = ['missing', 'garbled', 'wrong'].map((name) => join(tmp.dir, name));
  mkdirSync(garbled);
  writeFileSync(join(garbled, 'report.json'), '{"comparison": [');
  mkdirSync(wrong);
  writeFileSync(join(wrong, 'report.json'), JSON.stringify({ comparison: [] }));
  const out = join(tmp.dir, 'out');
  for (const [dir, message] of [[missing, /missing\/report\.json: cannot read an experiment report/], [garbled, /garbled\/report\.json: not JSON/],
    [wrong, /wrong\/report\.json: not an experiment report/]] as const) {
    const run = fedseg('experiment', '--combine', dir, '--out', out);
    assert.equal(run.status, 1, run.stdout);
    assert.match(run.stderr, message);
  }
  const none = fedseg('experiment', '--combine', ',', '--out', out);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /--combine needs at least one folder/);
});

test('experiment DP options: an epsilon must be positive, and --dp-clip / --dp-delta need --dp-epsilons', () => {
  for (const [args, message] of [
    [['--dp-epsilons', '8,0'], /--dp-epsilons: "0" is not a positive number/],
    [['--dp-epsilons', ','], /--dp-epsilons needs at least one epsilon/],
    [['--dp-clip', '1'], /--dp-clip and --dp-delta only apply with --dp-epsilons/],
    [['--dp-epsilons', '8', '--dp-delta', '1'], /--dp-delta must be in \(0, 1\), got "1"/],
  ] as const) {
    const run = fedseg('experiment', '--out', join(tmp.dir, 'dp'), ...args);
    assert.equal(run.status, 1, run.stdout);
    assert.match(run.stderr, message);
  }
});
