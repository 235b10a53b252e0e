#!/usr/bin/env node
// Bundles the Electron shell into dist-electron/: main (ESM), preload (CommonJS, as sandboxed preloads must be)
// and the site-runtime process (ESM). npm packages stay external: electron-builder ships node_modules, and
// native modules (better-sqlite3, tfjs-node) must be loaded from disk, not from a bundle.
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };

await Promise.all([
  build({ ...common, entryPoints: ['main/index.ts'], outfile: 'dist-electron/main/index.js', format: 'esm', packages: 'external' }),
  build({ ...common, entryPoints: ['main/service/entry.ts'], outfile: 'dist-electron/service/entry.js', format: 'esm', packages: 'external' }),
  build({ ...common, entryPoints: ['preload/index.ts'], outfile: 'dist-electron/preload/index.cjs', format: 'cjs', external: ['electron'] }),
]);
console.log('dist-electron/ built');
