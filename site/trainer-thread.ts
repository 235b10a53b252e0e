/**
 * Worker-thread entry of the isolated trainer (site/isolated-trainer.ts): builds the site trainer
 * in this thread, runs the one call it was started for, posts the result and ends. Everything the
 * call allocated (the wasm heap above all) goes back to the system with the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../core/errors.js';
import { createDataDirTrainer } from './trainer.js';
import type { TrainerThreadJob, TrainerThreadMessage } from './trainer-thread-messages.js';

const port = parentPort;
if (!port) throw new Error('site/trainer-thread.ts runs only as a worker thread');
const post = (message: TrainerThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function run(job: TrainerThreadJob): Promise<void> {
  const trainer = createDataDirTrainer(job.options);
  // Aborting terminates this thread (the parent does it), so the calls get a signal that never fires.
  const signal = new AbortController().signal;
  const backend = () => trainer.backend?.() ?? '';
  switch (job.kind) {
    case 'count':
      return post({ type: 'result', result: await trainer.caseCounts(), backend: backend() });
    case 'train': {
      const result = await trainer.train({
        config: job.config, weights: job.weights, instructions: job.instructions, signal,
        onProgress: (progress) => post({ type: 'progress', progress }),
      });
      return post({ type: 'result', result, backend: backend() }, result.weights.map((t) => t.data.buffer as ArrayBuffer));
    }
    case 'evaluate':
      return post({ type: 'result', result: await trainer.evaluate({ config: job.config, weights: job.weights, signal }), backend: backend() });
  }
}

run(workerData as TrainerThreadJob).catch((err) => post({ type: 'failed', message: errorMessage(err) }));
