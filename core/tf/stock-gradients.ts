/**
 * TF.js's own gradients and chained ops (x.reshape(), x.sum(), ...). The Node build of tfjs-core
 * (`dist/tf-core.node.js`) ships neither, and the `@tensorflow/tfjs` umbrella package that normally
 * bundles them is not a dependency. `scripts/build-gradients.js` bundles them at install time into
 * `tfjs-stock-gradients.generated.js` beside this file; they register into tfjs-core's
 * process-global registries, so they serve the CJS copy we use. Nothing is built or loaded from a
 * temp folder at run time, and the Electron build inlines the bundle (a literal import specifier).
 */
import * as tf from '@tensorflow/tfjs-core';
import { FedSegError } from '../errors.js';

let loading: Promise<void> | undefined;

/** Registers TF.js's stock gradients and chained ops once per process. */
export function loadStockGradients(): Promise<void> {
  loading ??= load();
  return loading;
}

async function load(): Promise<void> {
  // Already there when something else (e.g. tfjs-node's umbrella bundle) registered them.
  if (tf.getGradient(tf.Square) && typeof (tf.zeros([0]) as unknown as { square?: unknown }).square === 'function') return;
  try {
    await import('./tfjs-stock-gradients.generated.js');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new FedSegError('TF.js gradient bundle is missing: run `npm run build:gradients` (npm install and npm ci run it)',
      { file: 'core/tf/tfjs-stock-gradients.generated.js' }, { cause: err });
  }
}
