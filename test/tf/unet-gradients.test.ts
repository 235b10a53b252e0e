import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { nodeArgs } from '../../core/runtime/own-module.js';

const STOCK = { FEDSEG_FAST_CONV: '0', FEDSEG_FAST_OPS: '0', FEDSEG_NATIVE: 'off' };

function gradients(backend: string, env: Record<string, string>): { backend: string; gradients: Record<string, Float32Array> } {
  const run = spawnSync(process.execPath, nodeArgs(new URL('./fixtures/unet-gradients.js', import.meta.url), [backend]), {
    encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(run.status, 0, run.stderr);
  const parsed = JSON.parse(run.stdout.trim().split('\n').pop()!) as { backend: string; gradients: Record<string, string> };
  const decoded = Object.fromEntries(Object.entries(parsed.gradients).map(([k, b64]) => {
    const bytes = Buffer.from(b64, 'base64');
    return [k, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)];
  }));
  return { backend: parsed.backend, gradients: decoded };
}

test('whole U-Net and Attention U-Net gradients with FedSeg kernels equal the all-stock TF.js path', () => {
  const reference = gradients('cpu', STOCK);
  assert.equal(reference.backend, 'cpu (pure JavaScript)');
  const runs = [
    gradients('cpu', {}),
    gradients('wasm', {}),
    gradients('wasm', { FEDSEG_NATIVE: 'off' }), // the pure-wasm XNNPACK engine
  ];
  for (const run of runs) {
    for (const [variant, ref] of Object.entries(reference.gradients)) {
      const got = run.gradients[variant];
      assert.equal(got.length, ref.length);
      let err = 0;
      let scale = 0;
      for (let i = 0; i < ref.length; i++) {
        err = Math.max(err, Math.abs(got[i] - ref[i]));
        scale = Math.max(scale, Math.abs(ref[i]));
      }
      // Float32 rounding differs in summation order only; 1e-4 of the largest gradient leaves 50x margin.
      assert.ok(err / scale < 1e-4, `${run.backend} ${variant}: relative error ${err / scale}`);
    }
  }
});
