import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

test('fedseg help lists every subcommand', () => {
  const out = fedseg('help');
  assert.equal(out.status, 0, out.stderr);
  for (const name of ['synth', 'inspect', 'validate', 'preprocess', 'train', 'segment', 'server', 'site', 'demo', 'bench']) {
    assert.match(out.stdout, new RegExp(`^  ${name} `, 'm'));
  }
});

test('an unknown command exits 1 with a message naming it, also as JSON', () => {
  const out = fedseg('frobnicate', '--json');
  assert.equal(out.status, 1);
  assert.match(out.stderr, /unknown command "frobnicate"/);
  assert.deepEqual(JSON.parse(out.stdout), { ok: false, error: 'unknown command "frobnicate"; run "fedseg help" for the list' });
});
