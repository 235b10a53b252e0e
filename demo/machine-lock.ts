/**
 * Takes turns on this one machine: the demo runs five hospitals' site processes side by side, and
 * at the seed's full size (128^3, batch 2) each training step needs several GB, which five at once
 * would not find. Real hospitals each have their own machine and never wait for this.
 * A lock file created with O_EXCL holds the owner's pid; a lock whose owner died is taken over.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` while holding the lock at `path`. */
export async function withMachineLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) await unlink(path).catch(() => {});
      else await sleep(200);
    }
  }
  try {
    return await work();
  } finally {
    await unlink(path).catch(() => {});
  }
}
