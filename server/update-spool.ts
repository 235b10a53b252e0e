/**
 * The round's accepted updates on disk, one file of raw float32 weights per site, so the server
 * holds at most one update (mean strategies) or one block of every update (median, trimmed mean)
 * in memory however many sites take part. Files live in the server's own data folder (0700, files
 * 0600), never the shared OS temp folder, and are deleted when the round completes or is abandoned.
 */
import { chmodSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { clipInPlace, type BoundReport } from '../core/federation/bound-updates.js';
import type { Strategy } from '../core/federation/strategies/index.js';
import { parameterCount, viewsOf, type TensorList } from '../core/federation/tensors.js';
import { FedSegError } from '../core/errors.js';

/** Memory for one block of every update when a coordinate-wise strategy aggregates (32 MiB: 20 sites read 419,430 parameters at a time). */
export const COLUMN_BUDGET_BYTES = 32 * 1024 * 1024;

export class UpdateSpool {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode does not apply to a folder that already exists.
    chmodSync(dir, 0o700);
  }

  /** Removes the rounds a previous process left unfinished; returns the folder names removed. */
  sweep(): string[] {
    const names = readdirSync(this.dir);
    for (const name of names) rmSync(join(this.dir, name), { recursive: true, force: true });
    return names;
  }

  round(round: number, attempt: number): RoundSpool {
    return new RoundSpool(join(this.dir, `round-${round}-attempt-${attempt}`));
  }
}

export class RoundSpool {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Site names are [A-Za-z0-9][A-Za-z0-9_.-]* (server/index.ts registerSite), so they are safe file names. */
  private file(site: string): string {
    return join(this.dir, `${site}.f32`);
  }

  /** Stores a site's float32 weights (little-endian, manifest order). */
  async write(site: string, tensorBytes: Uint8Array): Promise<void> {
    const handle = await open(this.file(site), 'w', 0o600);
    try {
      await handle.writeFile(tensorBytes);
    } finally {
      await handle.close();
    }
  }

  remove(site: string): void {
    rmSync(this.file(site), { force: true });
  }

  /** Deletes every file of the round (completed, abandoned or interrupted). */
  discard(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Opens the sites' files for reading, in the order given. */
  async open(sites: readonly string[]): Promise<SpoolReaders> {
    const handles: FileHandle[] = [];
    try {
      for (const site of sites) handles.push(await open(this.file(site), 'r'));
    } catch (err) {
      await Promise.all(handles.map((h) => h.close()));
      throw err;
    }
    return new SpoolReaders(sites, handles);
  }
}

export class SpoolReaders {
  constructor(private readonly sites: readonly string[], private readonly handles: FileHandle[]) {}

  /** Fills `out` with update k's bytes from byte `offset`; a short file is an error naming the site. */
  async read(k: number, offset: number, out: Uint8Array): Promise<void> {
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await this.handles[k].read(out, done, out.length - done, offset + done);
      if (bytesRead === 0) throw new FedSegError(`spooled update of ${this.sites[k]} ends after ${offset + done} bytes`, { file: this.sites[k], field: 'weights' });
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.close()));
  }
}

/**
 * Aggregates the spooled updates of the sites in `reports` (sorted by site, so the result does not
 * depend on arrival order), clipping each as the bound plan says while it is read. Mean strategies
 * get one whole update at a time; coordinate-wise ones one block of every update at a time, the
 * block sized so the blocks of all updates together take `columnBudgetBytes`.
 */
export async function aggregateSpooled(
  strategy: Strategy, round: number, global: TensorList, spool: RoundSpool, reports: readonly BoundReport[], columnBudgetBytes = COLUMN_BUDGET_BYTES,
): Promise<TensorList> {
  const aggregation = strategy.begin(round, global);
  const readers = await spool.open(reports.map((r) => r.site));
  try {
    if (aggregation.kind === 'mean') {
      const buffer = new Float32Array(parameterCount(global));
      const bytes = new Uint8Array(buffer.buffer);
      const update = viewsOf(global, buffer);
      for (let k = 0; k < reports.length; k++) {
        await readers.read(k, 0, bytes);
        update.forEach((t, i) => clipInPlace(global[i].data, t.data, reports[k]));
        aggregation.add(update, reports[k].weight);
      }
      return aggregation.finish();
    }
    const block = Math.max(1, Math.floor(columnBudgetBytes / (4 * reports.length)));
    const columns = reports.map(() => new Float32Array(block));
    let offset = 0;
    for (let tensor = 0; tensor < global.length; tensor++) {
      const size = global[tensor].data.length;
      for (let start = 0; start < size; start += block) {
        const values = columns.map((c) => c.subarray(0, Math.min(block, size - start)));
        await Promise.all(values.map((v, k) => readers.read(k, 4 * (offset + start), new Uint8Array(v.buffer, v.byteOffset, v.byteLength))));
        const g = global[tensor].data.subarray(start, start + values[0].length);
        values.forEach((v, k) => clipInPlace(g, v, reports[k]));
        aggregation.addBlock(tensor, start, values);
      }
      offset += size;
    }
    return aggregation.finish();
  } finally {
    await readers.close();
  }
}
