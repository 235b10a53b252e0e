/**
 * One demo hospital as its own Node process: the shared site runtime (site/runtime.ts) with
 * automatic approval, training and evaluating through the site trainer every hospital runs
 * (site/trainer.ts), at the resolution the federation's model asks for. Every runtime
 * event is printed as one JSON line (the demo writes them to logs/<site>.log).
 */
import { errorMessage } from '../core/errors.js';
import { initBackend } from '../core/tf/backend.js';
import { SiteRuntime, type LocalTrainer } from '../site/runtime.js';
import { createIsolatedTrainer } from '../site/isolated-trainer.js';
import { createDataDirTrainer } from '../site/trainer.js';
import { withMachineLock } from './machine-lock.js';
import { SiteWorkerConfigSchema } from './site-worker-config.js';

const print = (event: object) => process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`);

async function main(): Promise<number> {
  const config = SiteWorkerConfigSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
  const token = process.env.FEDSEG_SITE_TOKEN;
  if (!token) throw new Error('FEDSEG_SITE_TOKEN is not set');
  const trainerOptions = { trainDirs: [config.trainDir], validationDirs: [config.heldOutDir] };
  print({ type: 'backend', detail: (await initBackend()).detail });
  const siteTrainer = config.threadPerRound ? createIsolatedTrainer(trainerOptions) : createDataDirTrainer(trainerOptions);
  const lock = config.machineLock;
  const trainer: LocalTrainer = lock
    ? { ...siteTrainer, train: (args) => withMachineLock(lock, () => siteTrainer.train(args)), evaluate: (args) => withMachineLock(lock, () => siteTrainer.evaluate(args)) }
    : siteTrainer;
  const counts = await trainer.caseCounts();
  print({ type: 'data-loaded', site: config.site, ...counts });
  const runtime = new SiteRuntime({
    url: config.url, token, trainer,
    // Synthetic hospitals with a couple of held-out cases each: the demo shows every site's numbers, below SPEC's floor of 5.
    minMetricCases: 1,
    noiseSeed: config.noiseSeed,
    // --auto-approve: an unattended demo hospital; the request still lists what leaves the site.
    approve: (request) => {
      print({ type: 'approval-request', round: request.round, leavesSite: request.leavesSite });
      return true;
    },
  });
  runtime.on('event', (event) => print(event));
  process.once('SIGTERM', () => runtime.stop());
  // The demo talks to us over IPC only to notice when it is gone: never outlive it.
  process.once('disconnect', () => runtime.stop());
  await runtime.start();
  const outcome = await runtime.done;
  print({ type: 'exit', outcome, bytesSent: runtime.bytesSent, bytesReceived: runtime.bytesReceived });
  return outcome === 'refused' ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  print({ type: 'fatal', message: errorMessage(err) });
  process.exit(1);
});
