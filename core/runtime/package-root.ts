/**
 * The folder holding FedSeg's package.json, found by walking up from this module: the repository
 * when run from source, also when run from dist/ (compiled one level deeper) or from a bundle
 * (dist-electron/, app.asar). Files outside the compiled code (the native addon) are found from it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FedSegError } from '../errors.js';

export function packageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new FedSegError(`no package.json above ${start}; FedSeg's files are incomplete`);
  }
}
