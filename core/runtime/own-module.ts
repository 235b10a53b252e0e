/**
 * Starts one of FedSeg's own modules in a child process or worker thread. What `fedseg` ships is
 * compiled (dist/, by scripts/build-dist.js) and runs its .js files under plain node; tests and
 * development run the .ts sources under tsx. Which of the two applies follows from this file
 * itself, since a build holds either every module compiled or none. Callers name a module as they
 * import it, by its URL beside their own (`new URL('./site-worker.js', import.meta.url)`).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

const FROM_SOURCE = import.meta.url.endsWith('.ts');

/** The URL of the file that runs for `module` in this build: the .ts source or the compiled .js. */
function runnableUrl(module: URL): URL {
  const stem = module.href.replace(/\.(ts|js)$/, '');
  return new URL(`${stem}${FROM_SOURCE ? '.ts' : '.js'}`);
}

/** Path of the file that runs for `module` in this build (for existence checks and dynamic imports). */
export function ownModuleFile(module: URL): string {
  return fileURLToPath(runnableUrl(module));
}

/** Arguments for `spawn(process.execPath, ...)` that run `module` with `args`. */
export function nodeArgs(module: URL, args: readonly string[] = []): string[] {
  const file = ownModuleFile(module);
  // tsx is resolved from this package, so the child finds it whatever its working folder.
  return FROM_SOURCE ? ['--import', import.meta.resolve('tsx'), file, ...args] : [file, ...args];
}

/**
 * A worker thread running `module`. A thread does not take `--import` from its execArgv, so from
 * source it starts with a line of code that registers tsx in the thread and then imports the module.
 */
export function startWorker(module: URL, options: WorkerOptions = {}): Worker {
  const url = runnableUrl(module);
  if (!FROM_SOURCE) return new Worker(url, options);
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
