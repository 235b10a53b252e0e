/**
 * The site trainer (site/trainer.ts) with every call in a fresh worker thread that ends with it.
 * A wasm backend never shrinks its heap: a process that once ran a 128^3 batch-2 step keeps its
 * peak (about 4 GB) for good. Here that memory goes back to the system after each round, at the
 * price of preprocessing the site's cases again per call (seconds, against minutes of training).
 * Aborting a call terminates its thread at once, even in the middle of a native kernel.
 */
import { FedSegError } from '../core/errors.js';
import { startWorker } from '../core/runtime/own-module.js';
import type { LocalTrainer } from './runtime.js';
import { DATA_DIR_TRAINER_METRICS, type DataDirTrainerOptions } from './trainer.js';
import type { TrainerThreadJob, TrainerThreadMessage } from './trainer-thread-messages.js';

const THREAD_ENTRY = new URL('./trainer-thread.js', import.meta.url);

export function createIsolatedTrainer(options: DataDirTrainerOptions): LocalTrainer {
  let backend = 'not yet known (each round trains in a fresh worker thread)';

  function inThread<T>(job: TrainerThreadJob, signal?: AbortSignal, onProgress?: (m: TrainerThreadMessage & { type: 'progress' }) => void): Promise<T> {
    if (signal?.aborted) return Promise.reject(new FedSegError('training was cancelled'));
    return new Promise<T>((resolve, reject) => {
      // The weights are copied into the thread (not transferred): the caller keeps the global model.
      const worker = startWorker(THREAD_ENTRY, { workerData: job });
      let settled = false;
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', abort);
        void worker.terminate();
        outcome();
      };
      const abort = () => {
        finish(() => reject(new FedSegError('training was cancelled')));
      };
      signal?.addEventListener('abort', abort, { once: true });
      worker.on('message', (message: TrainerThreadMessage) => {
        if (message.type === 'progress') return onProgress?.(message);
        if (message.type === 'failed') return finish(() => reject(new FedSegError(message.message)));
        backend = `${message.backend} (in a worker thread per round)`;
        finish(() => resolve(message.result as T));
      });
      worker.on('error', (err) => finish(() => reject(err)));
      worker.on('exit', (code) => finish(() => reject(new FedSegError(`the trainer thread exited with code ${code} before it answered`))));
    });
  }

  return {
    backend: () => backend,
    metricKeys: DATA_DIR_TRAINER_METRICS,
    caseCounts: () => inThread({ kind: 'count', options }),
    train: ({ config, weights, instructions, signal, onProgress }) =>
      inThread({ kind: 'train', options, config, weights, instructions }, signal, (m) => onProgress(m.progress)),
    evaluate: ({ config, weights, signal }) => inThread({ kind: 'evaluate', options, config, weights }, signal),
  };
}

