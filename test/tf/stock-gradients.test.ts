/**
 * Issue 10, D3: TF.js's stock gradients come from the bundle built at install time inside the
 * package; nothing is generated into, or loaded from, the OS temp folder, so another local user
 * who owns `$TMPDIR/fedseg-cache` can neither plant code nor make FedSeg fail.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../server/helpers.js';

test('gradients load with a hostile $TMPDIR: a planted fedseg-cache is ignored and nothing is written there', () => {
  const tmp = tempDir('tmpdir');
  try {
    // What another user could leave behind: a file where the old code made its cache folder.
    writeFileSync(join(tmp.dir, 'fedseg-cache'), 'owned by someone else\n', { mode: 0o444 });
    const script = [
      "const { initBackend, tf } = await import('./core/tf/backend.ts');",
      "await initBackend('cpu');",
      'const g = tf.grad((x) => x.square().sum())(tf.tensor([1, 2, 3]));',
      'console.log(JSON.stringify(Array.from(g.dataSync())));',
    ].join('\n');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8', env: { ...process.env, TMPDIR: tmp.dir, TEMP: tmp.dir, TMP: tmp.dir }, timeout: 120_000,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim().split('\n').at(-1), '[2,4,6]');
    // tsx (the test runner's TypeScript loader, not part of the product) keeps its own cache there.
    assert.deepEqual(readdirSync(tmp.dir).filter((f) => !f.startsWith('tsx-')), ['fedseg-cache']);
  } finally {
    tmp.cleanup();
  }
});
