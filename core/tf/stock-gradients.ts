/**
 * TF.js's own gradients and chained ops (x.reshape(), x.sum(), ...). The Node build of tfjs-core
 * (`dist/tf-core.node.js`) ships neither; they are ESM files with extension-less imports that Node
 * cannot load directly, and the `@tensorflow/tfjs` umbrella package that normally bundles them is not a
 * dependency. We bundle them once with esbuild (already present through tsx) into a cached module.
 * They register into tfjs-core's process-global registries, so they serve the CJS copy we use.
 */
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic } from '../fs/atomic-write.js';

const ENTRY = [
  "import '@tensorflow/tfjs-core/dist/register_all_gradients.js';",
  "import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';",
].join('\n');

let loading: Promise<void> | undefined;

/** Registers TF.js's stock gradients and chained ops once per process. */
export function loadStockGradients(): Promise<void> {
  loading ??= load();
  return loading;
}

async function load(): Promise<void> {
  // Already there when something else (e.g. tfjs-node's umbrella bundle) registered them.
  if (tf.getGradient(tf.Square) && typeof (tf.zeros([0]) as unknown as { square?: unknown }).square === 'function') return;
  const require = createRequire(import.meta.url);
  const corePackage = require.resolve('@tensorflow/tfjs-core/package.json');
  const key = createHash('sha256').update(`${tf.version_core}\n${corePackage}\n${ENTRY}`).digest('hex').slice(0, 16);
  const cacheDir = join(tmpdir(), 'fedseg-cache');
  const file = join(cacheDir, `tfjs-stock-gradients-${key}.mjs`);
  if (!existsSync(file)) {
    const result = await build({
      stdin: { contents: ENTRY, resolveDir: dirname(corePackage) },
      bundle: true,
      format: 'esm',
      platform: 'node',
      write: false,
      logLevel: 'error',
    });
    mkdirSync(cacheDir, { recursive: true });
    await writeFileAtomic(file, result.outputFiles[0].text, { what: 'TF.js gradient bundle' });
  }
  await import(pathToFileURL(file).href);
}
