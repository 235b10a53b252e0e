import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nodeArgs, ownModuleFile, startWorker } from '../../core/runtime/own-module.js';
import { packageRoot } from '../../core/runtime/package-root.js';
import { defaultAddonPath } from '../../core/tf/native-engine.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = new URL('./fixtures/report-self.js', import.meta.url);
const DIST = join(REPO, 'dist');

/** Evaluates `body` (ESM, top-level await) in plain node, with no TypeScript loader, and returns its stdout as JSON. */
function inPlainNode(body: string): unknown {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', body], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('from source a module named by its .js specifier runs as .ts under tsx, in a child process and in a worker thread', async () => {
  assert.equal(ownModuleFile(FIXTURE), fileURLToPath(FIXTURE).replace(/\.js$/, '.ts'));
  const args = nodeArgs(FIXTURE, ['one', 'two words']);
  assert.equal(args[0], '--import');
  const child = spawnSync(process.execPath, args, { cwd: '/', encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { file: pathToFileURL(ownModuleFile(FIXTURE)).href, args: ['one', 'two words'] });

  const worker = startWorker(FIXTURE);
  const [message] = await new Promise<unknown[]>((resolve, reject) => {
    worker.once('message', (m) => resolve([m]));
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.equal((message as { file: string }).file, pathToFileURL(ownModuleFile(FIXTURE)).href);
});

test('compiled (dist/), the same helper runs .js files under plain node with no loader', () => {
  const compiled = pathToFileURL(join(DIST, 'core/runtime/own-module.js')).href;
  const cliEntry = pathToFileURL(join(DIST, 'cli/entry.js')).href;
  const args = inPlainNode(`const m = await import(${JSON.stringify(compiled)}); console.log(JSON.stringify(m.nodeArgs(new URL(${JSON.stringify(cliEntry)}), ['help'])));`) as string[];
  assert.deepEqual(args, [join(DIST, 'cli/entry.js'), 'help']);
  const help = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: fedseg <command>/);
});

test('the package root, and the native addon path under it, are the same from source and from dist/', () => {
  assert.equal(packageRoot(), REPO.replace(/\/$/, ''));
  const addon = inPlainNode(`const m = await import(${JSON.stringify(pathToFileURL(join(DIST, 'core/tf/native-engine.js')).href)}); console.log(JSON.stringify(m.defaultAddonPath()));`);
  assert.equal(addon, defaultAddonPath());
  assert.equal(defaultAddonPath(), join(REPO, 'native/build/Release/fedseg_native.node'));
});

test('the build copies the gradients bundle and drops compiled output whose source is gone; bin/fedseg.js warns when the build is older than the sources', () => {
  const stray = join(DIST, 'core/runtime/removed-module.js');
  mkdirSync(join(DIST, 'core/runtime'), { recursive: true });
  writeFileSync(stray, 'export {};\n');
  const build = spawnSync(process.execPath, ['scripts/build-dist.js'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  assert.equal(existsSync(stray), false, 'output of a deleted source is removed');
  const gradients = 'core/tf/tfjs-stock-gradients.generated.js';
  assert.equal(readFileSync(join(DIST, gradients), 'utf8'), readFileSync(join(REPO, gradients), 'utf8'));
  assert.ok(existsSync(join(DIST, 'cli/entry.js')));

  const fedseg = () => spawnSync(process.execPath, ['bin/fedseg.js', 'help'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(fedseg().stderr, '', 'a fresh build runs without a word');
  const stamp = join(DIST, '.built');
  const builtAt = statSync(stamp).mtime;
  utimesSync(stamp, new Date(0), new Date(0)); // as if every source had changed since
  try {
    const stale = fedseg();
    assert.equal(stale.status, 0);
    assert.match(stale.stderr, /^fedseg: warning: .*\.ts changed after the last build; this runs the older build in dist\/ \(run `npm run build`\)\n$/);
  } finally {
    utimesSync(stamp, builtAt, builtAt);
  }
});
