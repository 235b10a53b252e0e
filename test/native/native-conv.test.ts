import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { nodeArgs } from '../../core/runtime/own-module.js';
import {
  defaultAddonPath,
  engineFromAddon,
  loadNativeAddon,
  nativeEngineStatus,
  probeNativeAddon,
} from '../../core/tf/native-engine.js';
import { checkCase, convCases, useCpuReference, type CaseResult } from './conv-reference.js';

const TOLERANCE = 1e-5;
const addon = loadNativeAddon();
const skipReason = addon ? false : `native addon unavailable: ${nativeEngineStatus()}`;
if (skipReason) console.log(`# skipping native exactness tests: ${skipReason}`);

function assertExact(results: CaseResult[]): void {
  for (const r of results) {
    for (const op of ['forward', 'backpropInput', 'backpropFilter'] as const) {
      assert.ok(r[op] < TOLERANCE, `${op} of ${r.label}: relative error ${r[op]}`);
    }
  }
}

describe('native engine loader', () => {
  it('reports a missing addon without throwing', () => {
    const probe = probeNativeAddon('/nonexistent/fedseg_native.node');
    assert.equal(probe.addon, undefined);
    assert.match(probe.status, /not built/);
  });

  it('honours FEDSEG_NATIVE=off', () => {
    const before = process.env.FEDSEG_NATIVE;
    process.env.FEDSEG_NATIVE = 'off';
    try {
      const probe = probeNativeAddon('/nonexistent/fedseg_native.node');
      assert.equal(probe.addon, undefined);
      assert.match(probe.status, /disabled/);
    } finally {
      if (before === undefined) delete process.env.FEDSEG_NATIVE;
      else process.env.FEDSEG_NATIVE = before;
    }
  });

  it('reports a file that is not an addon as failing to load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedseg-native-'));
    try {
      const fake = join(dir, 'fedseg_native.node');
      writeFileSync(fake, 'not a shared library');
      const probe = probeNativeAddon(fake);
      assert.equal(probe.addon, undefined);
      assert.match(probe.status, /failed to load/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native conv3d vs TF.js stock cpu kernels', { skip: skipReason }, () => {
  it('rejects arrays whose length disagrees with their shape', () => {
    const x = new Float32Array(8);
    const w = new Float32Array(1);
    const y = new Float32Array(7); // should be 8
    assert.throws(
      () => addon!.conv3d(x, [1, 2, 2, 2, 1], w, [1, 1, 1, 1, 1], y, [1, 2, 2, 2, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1]),
      RangeError,
    );
    assert.throws(
      () => addon!.conv3d(x, [1, 2, 2, 2, 1], w, [1, 1, 1, 1, 2], new Float32Array(16), [1, 2, 2, 2, 2], [1, 1, 1], [0, 0, 0], [1, 1, 1]),
      RangeError,
    );
  });

  for (const threads of [1, 2, 3]) {
    it(`is exact to float32 rounding on random shapes, strides, paddings (${threads} threads)`, async () => {
      await useCpuReference();
      addon!.setThreads(threads);
      const engine = engineFromAddon(addon!);
      assertExact(convCases(24, 100 + threads).map((c) => checkCase(engine, c)));
    });
  }

  it('gives bit-identical gradients whatever the thread count', () => {
    const x = Float32Array.from({ length: 2 * 10 * 9 * 8 * 12 }, (_, i) => Math.sin(i * 0.37));
    const dy = Float32Array.from({ length: 2 * 10 * 9 * 8 * 20 }, (_, i) => Math.cos(i * 0.11));
    const w = Float32Array.from({ length: 27 * 12 * 20 }, (_, i) => Math.sin(i * 0.7));
    const run = (threads: number) => {
      addon!.setThreads(threads);
      const dw = new Float32Array(w.length);
      const dx = new Float32Array(x.length);
      addon!.conv3dBackpropFilter(x, [2, 10, 9, 8, 12], dy, [2, 10, 9, 8, 20], dw, [3, 3, 3, 12, 20], [1, 1, 1], [1, 1, 1], [1, 1, 1]);
      addon!.conv3dBackpropInput(dy, [2, 10, 9, 8, 20], w, [3, 3, 3, 12, 20], dx, [2, 10, 9, 8, 12], [1, 1, 1], [1, 1, 1], [1, 1, 1]);
      return { dw, dx };
    };
    const one = run(1);
    for (const threads of [2, 3, 5]) assert.deepEqual(run(threads), one, `${threads} threads`);
  });

  for (const isa of ['avx2', 'portable']) {
    it(`is exact on the ${isa} code path too`, () => {
      const child = spawnSync(process.execPath, nodeArgs(new URL('./isa-check.js', import.meta.url)), {
        encoding: 'utf8',
        env: { ...process.env, FEDSEG_NATIVE_ISA: isa, CASES: '16', SEED: '5' },
      });
      assert.equal(child.status, 0, child.stderr);
      const report = JSON.parse(child.stdout.trim().split('\n').pop()!) as { engine: string; results: CaseResult[] };
      assertExact(report.results);
    });
  }
});

describe('the addon in worker threads that come and go', () => {
  it('runs a multi-threaded conv in each of four threads started one after another (the pool stops when the library is unloaded)', { skip: skipReason }, () => {
    // Before the pool stopped its threads on unload, the fourth thread's job never returned.
    const fixture = fileURLToPath(new URL('./fixtures/threads-in-turn.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [fixture, defaultAddonPath()], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
    // Output voxel 0 is a corner: 2x2x2 taps x 4 channels x 1 x 0.5 = 16.
    assert.deepEqual(r.stdout.trim().split('\n'), [0, 1, 2, 3].map((i) => `thread ${i}: 16`));
  });
});
