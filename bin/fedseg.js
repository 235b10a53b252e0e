#!/usr/bin/env node
// Entry point for the `fedseg` command: runs the CLI compiled into dist/ by scripts/build-dist.js,
// which `npm ci` / `npm install` runs (and `npm run build`, `npm test` rerun). Plain node, no loader.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/entry.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('fedseg: the compiled CLI (dist/) is missing; run `npm run build` in the FedSeg folder\n');
  process.exit(2);
}
await import(entry.href);
