#!/usr/bin/env node
// Compiles the code the `fedseg` command runs (core, cli, server, site, demo, experiment, bench) into
// dist/ with tsc (tsconfig.build.json), so the CLI, the server and their child processes and threads
// run under plain node, without a TypeScript loader. Run by `npm ci` / `npm install` (after the
// gradients bundle it copies), by `npm run build`, and before every test run (scripts/run-tests.js),
// so tests never start a stale build. Incremental: a run with nothing changed takes a few seconds.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
/** Files the compiled code reads beside itself at run time, copied as they are. */
const ASSETS = ['core/tf/tfjs-stock-gradients.generated.js', 'bench/torch_unet.py'];
/** The folders tsconfig.build.json compiles (its `include`); anything else in dist/ is left alone. */
const COMPILED = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')).include;

function fail(message) {
  console.error(`[fedseg build] ${message}`);
  process.exit(1);
}

// tsc's incremental record does not notice deleted output, so a partly removed dist/ builds afresh.
if (!COMPILED.every((folder) => existsSync(join(dist, folder)))) rmSync(join(dist, '.tsbuildinfo'), { force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (compiled.status !== 0) fail(`tsc -p tsconfig.build.json failed (exit ${compiled.status ?? compiled.signal})`);

for (const asset of ASSETS) {
  const from = join(root, asset);
  if (!existsSync(from)) fail(`${asset} is missing${asset.endsWith('.generated.js') ? '; run `npm run build:gradients` first' : ''}`);
  mkdirSync(dirname(join(dist, asset)), { recursive: true });
  copyFileSync(from, join(dist, asset));
}

// tsc never deletes: output whose source was removed or renamed would stay importable, so drop it.
function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
      continue;
    }
    const source = relative(dist, path);
    const stillBuilt = ASSETS.includes(source) || (source.endsWith('.js') && existsSync(join(root, source.replace(/\.js$/, '.ts'))));
    if (!stillBuilt) rmSync(path);
  }
}
for (const folder of COMPILED) if (existsSync(join(dist, folder))) prune(join(dist, folder));

// bin/fedseg.js warns when a source file in these folders is newer than this stamp.
writeFileSync(join(dist, '.built'), `${JSON.stringify({ folders: COMPILED })}\n`);
console.log(`[fedseg build] compiled ${COMPILED.join(', ')} into ${relative(root, dist)}/`);
