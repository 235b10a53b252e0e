import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { writeFileAtomic, writeFileAtomicSync } from '../../core/fs/atomic-write.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedseg-atomic-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('writes and replaces a file, with and without fsync, leaving no temp file', () =>
  withDir(async (dir) => {
    const path = join(dir, 'a.bin');
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, 'text', { fsync: true });
    assert.equal(await readFile(path, 'utf8'), 'text');
    writeFileAtomicSync(path, new Uint8Array([9, 8]), { fsync: true });
    assert.deepEqual([...(await readFile(path))], [9, 8]);
    assert.deepEqual(await readdir(dir), ['a.bin']);
  }));

test('a write that fails after its temp file exists removes the temp file and keeps the old file whole', () =>
  withDir(async (dir) => {
    const path = join(dir, 'model.fsm');
    await writeFile(path, 'old contents');
    // Not bytes: the write into the (already created) temp file throws.
    const notBytes = { length: 3 } as unknown as Uint8Array;
    await assert.rejects(writeFileAtomic(path, notBytes, { what: 'model file' }), (err: unknown) => err instanceof FedSegError && /model\.fsm: cannot write model file/.test(err.message));
    assert.throws(() => writeFileAtomicSync(path, notBytes), FedSegError);
    assert.equal(await readFile(path, 'utf8'), 'old contents');
    assert.deepEqual(await readdir(dir), ['model.fsm']);
  }));

test('a rename that fails (target is a folder) leaves no temp file and the folder untouched', () =>
  withDir(async (dir) => {
    const target = join(dir, 'taken');
    await mkdir(target);
    await writeFile(join(target, 'inside.txt'), 'keep');
    await assert.rejects(writeFileAtomic(target, 'x'), FedSegError);
    assert.throws(() => writeFileAtomicSync(target, 'x', { fsync: true }), FedSegError);
    assert.deepEqual(await readdir(dir), ['taken']);
    assert.equal(await readFile(join(target, 'inside.txt'), 'utf8'), 'keep');
  }));

test('concurrent writes of one path in one process both succeed and one of them wins whole', () =>
  withDir(async (dir) => {
    const path = join(dir, 'shared.bin');
    const first = new Uint8Array(256 * 1024).fill(1);
    const second = new Uint8Array(256 * 1024).fill(2);
    await Promise.all([writeFileAtomic(path, first), writeFileAtomic(path, second), writeFileAtomic(path, first, { fsync: true })]);
    const final = await readFile(path);
    assert.equal(final.length, first.length);
    assert.ok(final.every((b) => b === final[0]) && (final[0] === 1 || final[0] === 2), 'final file is one write, whole');
    assert.deepEqual(await readdir(dir), ['shared.bin']);
  }));

test('mode gives the new file exactly those permission bits, whatever the umask', () =>
  withDir(async (dir) => {
    const path = join(dir, 'secret.bin');
    const old = process.umask(0o000);
    try {
      writeFileAtomicSync(path, 'a', { mode: 0o600 });
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      await writeFileAtomic(path, 'b', { mode: 0o640 });
      assert.equal((await stat(path)).mode & 0o777, 0o640);
    } finally {
      process.umask(old);
    }
  }));
