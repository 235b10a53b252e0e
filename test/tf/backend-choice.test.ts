/**
 * How 'auto' treats the webgpu route: a software adapter or no adapter at all is a fallback whose
 * reason ends the backend line, and webgpu asked for by name takes the software adapter (as the tests
 * do) or fails with the reason. Each case runs in a child process, since a process picks its backend once.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { on } from './test-backends.js';

function choose(preference: string, env: Record<string, string>): { detail?: string; error?: string } {
  const script = `const { initBackend } = await import('./core/tf/backend.ts');
    try { console.log(JSON.stringify({ detail: (await initBackend(${JSON.stringify(preference)})).detail })); }
    catch (err) { console.log(JSON.stringify({ error: err.message })); }`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8', env: { ...process.env, FEDSEG_BACKEND: '', ...env }, maxBuffer: 16 << 20,
  });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as { detail?: string; error?: string };
}

test('without a Vulkan driver, auto falls back to a CPU backend and says why; webgpu by name fails with the reason', () => {
  const env = { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
  const auto = choose('auto', env);
  assert.match(auto.detail ?? '', /^(tensorflow|wasm|cpu) .*; no GPU: .*webgpu: no WebGPU adapter/);
  assert.match(choose('webgpu', env).error ?? '', /webgpu: no WebGPU adapter/);
});

test('a software adapter is never picked by auto, and is used when webgpu is asked for by name', on('webgpu'), () => {
  const auto = choose('auto', {});
  assert.match(auto.detail ?? '', /; no GPU: .*webgpu: only a software adapter \(google SwiftShader/);
  assert.match(choose('webgpu', {}).detail ?? '', /^webgpu \(google SwiftShader .*software adapter/);
});
