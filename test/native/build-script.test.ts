import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

// The install hook must never fail `npm ci`: every skip path exits 0 and says why.
const script = fileURLToPath(new URL('../../scripts/build-native.js', import.meta.url));

function run(env: Record<string, string>): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('scripts/build-native.js', () => {
  it('skips on request and exits 0', () => {
    const r = run({ FEDSEG_SKIP_NATIVE: '1' });
    assert.equal(r.status, 0);
    assert.match(r.out, /skipped: FEDSEG_SKIP_NATIVE=1/);
  });

  it('skips without a C compiler, naming it, and exits 0', () => {
    const r = run({ CC: '/nonexistent/cc' });
    assert.equal(r.status, 0);
    assert.match(r.out, /skipped: no C compiler \(`\/nonexistent\/cc`\)/);
  });
});
