#!/usr/bin/env node
// Best-effort build of FedSeg's optional native conv3d addon (native/), run by `npm install`.
// It NEVER fails the install: without a C compiler, make, Python or Node headers it prints why it
// skipped and exits 0, and FedSeg uses its pure wasm/JS kernels instead (see native/README.md).
// Env: FEDSEG_SKIP_NATIVE=1 skips the build; FEDSEG_NATIVE_BUILD_TIMEOUT_S caps it (default 120 s).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addon = join(nativeDir, 'build', 'Release', 'fedseg_native.node');

function log(message) {
  console.log(`[fedseg native] ${message}`);
}

function skip(reason) {
  log(`skipped: ${reason}. FedSeg will use its pure wasm/JS conv3d kernels (slower, same results).`);
  process.exit(0);
}

function has(command, args = ['--version']) {
  const r = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

// npm passes its bundled node-gyp to lifecycle scripts; otherwise look next to npm itself.
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8', timeout: 20_000 });
  if (npmRoot.status === 0) candidates.push(join(npmRoot.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

// Headers matching the running node, so node-gyp needs no download (this machine has no internet).
function localNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = resolve(dirname(process.execPath), '..');
  const versionHeader = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionHeader)) return undefined;
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
  const version = `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return version === process.version ? prefix : undefined;
}

if (process.env.FEDSEG_SKIP_NATIVE === '1') skip('FEDSEG_SKIP_NATIVE=1');
if (!existsSync(join(nativeDir, 'binding.gyp'))) skip('native/binding.gyp not found');
// On Windows node-gyp finds Visual Studio's C compiler (MSVC) itself and reports when there is none.
if (process.platform !== 'win32') {
  const cc = process.env.CC ?? 'cc';
  if (!has(cc)) skip(`no C compiler (\`${cc}\`) on PATH`);
  if (!has('make')) skip('`make` is not installed');
}
const nodeGyp = findNodeGyp();
if (!nodeGyp) skip('node-gyp (bundled with npm) not found');

const args = [nodeGyp, 'rebuild', `--directory=${nativeDir}`];
const nodedir = localNodeDir();
if (nodedir) args.push(`--nodedir=${nodedir}`);
const timeoutS = Number(process.env.FEDSEG_NATIVE_BUILD_TIMEOUT_S ?? 120);
log(`building native conv3d kernels (${nodedir ? `headers in ${nodedir}` : 'node-gyp may download headers'})`);
const started = Date.now();
const build = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: timeoutS * 1000 });
if (build.status !== 0 || !existsSync(addon)) {
  const output = `${build.stdout ?? ''}${build.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  rmSync(addon, { force: true });
  if (output) console.log(output);
  skip(build.error ? `node-gyp did not finish: ${build.error.message}` : `node-gyp exited with ${build.status}`);
}

// Load it in a child process: a broken build must not be left where the engine would pick it up.
const probe = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(addon)}); console.log(JSON.stringify(a.info()));`], {
  encoding: 'utf8',
  timeout: 20_000,
});
if (probe.status !== 0) {
  rmSync(addon, { force: true });
  skip(`the built addon does not load: ${(probe.stderr ?? '').trim().split('\n')[0]}`);
}
log(`built ${addon} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${probe.stdout.trim()}`);
