#!/usr/bin/env node
// Entry point for the `fedseg` command: runs the CLI compiled into dist/ by scripts/build-dist.js,
// which `npm ci` / `npm install` runs (and `npm run build`, `npm test` rerun). Plain node, no loader.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = fileURLToPath(new URL('../dist/cli/entry.js', import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write('fedseg: the compiled CLI (dist/) is missing; run `npm run build` in the FedSeg folder\n');
  process.exit(2);
}

/** A source file changed after the last build, or undefined; a few ms, and none without sources (an image). */
function newerSource(builtAt, dir) {
  if (!existsSync(dir)) return undefined;
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, item.name);
    const found = item.isDirectory() ? newerSource(builtAt, path) : item.name.endsWith('.ts') && statSync(path).mtimeMs > builtAt ? path : undefined;
    if (found) return found;
  }
  return undefined;
}

// The build's stamp: when it finished, and which source folders it compiled.
const stamp = join(root, 'dist', '.built');
const { folders } = existsSync(stamp) ? JSON.parse(readFileSync(stamp, 'utf8')) : { folders: ['cli'] };
const builtAt = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
for (const folder of folders) {
  const changed = newerSource(builtAt, join(root, folder));
  if (changed) {
    process.stderr.write(`fedseg: warning: ${changed} changed after the last build; this runs the older build in dist/ (run \`npm run build\`)\n`);
    break;
  }
}
await import(pathToFileURL(entry).href);
