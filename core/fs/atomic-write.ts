/**
 * Atomic file writes: the bytes go to a temp file beside the target, which is then renamed over it,
 * so readers see the old file or the whole new one, never half of one. The temp name carries the
 * pid and a per-process counter (`<path>.tmp-<pid>-<n>`), so two writes of one path in one process
 * never share a temp file; a failed write removes its temp file and leaves the old file untouched.
 * `fsync` also flushes the file and its folder entry to disk, for files that must survive a power cut.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FedSegError } from '../errors.js';

export interface AtomicWriteOptions {
  /** fsync the file before the rename and its folder after it (default false). */
  fsync?: boolean;
  /** What the file is, for the error message (default 'file'). */
  what?: string;
  /** Permission bits of the new file, exactly (not reduced by the umask), e.g. 0o600 for secrets; default 0o666 less the umask. */
  mode?: number;
}

let tmpCounter = 0;

/** The temp file name a write of `path` uses; `/\.tmp-\d+-\d+$/` matches every one (for sweeping leftovers). */
function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}-${tmpCounter++}`;
}

export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const handle = await open(tmp, 'w', options.mode ?? 0o666);
    try {
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.writeFile(data);
      if (options.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw writeError(path, options, err);
  }
  if (options.fsync) syncDir(path);
}

/** The synchronous twin of `writeFileAtomic`, for callers that must not yield (e.g. inside a DB transaction). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(path);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const fd = openSync(tmp, 'w', options.mode ?? 0o666);
    try {
      if (options.mode !== undefined) fchmodSync(fd, options.mode);
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
      if (options.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw writeError(path, options, err);
  }
  if (options.fsync) syncDir(path);
}

/** Persists the rename itself (the folder entry). */
function syncDir(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeError(path: string, options: AtomicWriteOptions, err: unknown): FedSegError {
  return new FedSegError(`cannot write ${options.what ?? 'file'} (${(err as Error).message})`, { file: path }, { cause: err });
}
