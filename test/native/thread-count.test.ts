import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nodeArgs } from '../../core/runtime/own-module.js';
import { loadNativeAddon, MAX_NATIVE_THREADS, nativeEngineStatus, nativeThreadCount } from '../../core/tf/native-engine.js';

const skipReason = loadNativeAddon() ? false : `native addon unavailable: ${nativeEngineStatus()}`;

describe('FEDSEG_THREADS', () => {
  it('defaults to every core this process may use', () => {
    const n = nativeThreadCount({});
    assert.ok(n >= 1 && n <= MAX_NATIVE_THREADS, String(n));
    assert.equal(nativeThreadCount({ FEDSEG_THREADS: ' ' }), n);
  });

  it('takes a whole number from 1 to 256', () => {
    assert.equal(nativeThreadCount({ FEDSEG_THREADS: '3' }), 3);
    assert.equal(nativeThreadCount({ FEDSEG_THREADS: ' 256 ' }), 256);
  });

  for (const bad of ['0', '257', '2.5', '-1', 'four', '1e2', '0x10']) {
    it(`rejects "${bad}" with an error naming FEDSEG_THREADS`, () => {
      assert.throws(() => nativeThreadCount({ FEDSEG_THREADS: bad }), (err: Error) =>
        err.name === 'FedSegError' && err.message.includes('FEDSEG_THREADS') && err.message.includes(`"${bad}"`));
    });
  }

  it('stops backend set-up with a malformed FEDSEG_THREADS instead of falling back to wasm', () => {
    const backend = new URL('../../core/tf/backend.ts', import.meta.url).href;
    const child = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', `await (await import(${JSON.stringify(backend)})).initBackend('cpu');`], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, FEDSEG_THREADS: 'lots' },
    });
    assert.notEqual(child.status, 0);
    assert.match(child.stderr, /FEDSEG_THREADS must be a whole number from 1 to 256, got "lots"/);
  });
});

describe('native kernels at 1, 2 and 3 threads', { skip: skipReason }, () => {
  it('give bit-identical forward, backprop-input, backprop-filter and sums (child processes with FEDSEG_THREADS)', () => {
    const run = (threads: number) => {
      const child = spawnSync(process.execPath, nodeArgs(new URL('./fixtures/thread-digests.js', import.meta.url)), {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, FEDSEG_THREADS: String(threads) },
      });
      assert.equal(child.status, 0, child.stderr);
      return JSON.parse(child.stdout.trim().split('\n').pop()!) as { threads: number; digests: Record<string, string> };
    };
    const [one, two, three] = [1, 2, 3].map(run);
    assert.deepEqual([one.threads, two.threads, three.threads], [1, 2, 3]);
    assert.equal(Object.keys(one.digests).length, 10);
    assert.deepEqual(two.digests, one.digests);
    assert.deepEqual(three.digests, one.digests);
  });
});
