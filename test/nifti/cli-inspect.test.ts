import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspectFile } from '../../cli/commands/inspect.js';
import { assertAffineClose, closeRel, nibabelMissingReason, runPython } from './python.js';

const missing = nibabelMissingReason();
if (missing) console.log(`# skipping inspect-vs-nibabel: ${missing}`);

interface Reference { file: string; dims: number[]; datatype: string; affine: number[][]; min: number; max: number; mean: number; variant: Record<string, unknown> }

/** The object `fedseg inspect --json FILE` prints, computed in this process (84 files: spawning each would cost minutes). */
async function inspectJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(JSON.stringify({ ok: true, ...(await inspectFile(file)) })) as Record<string, unknown>;
}

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

describe('fedseg inspect --json agrees with nibabel', { skip: missing ?? false }, () => {
  let dir = '';
  let refs: Reference[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedseg-inspect-'));
    refs = JSON.parse(runPython([fileURLToPath(new URL('./make_reference_files.py', import.meta.url)), dir])) as Reference[];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('dims, datatype, affine, min/max/mean (1e-5 relative) for every datatype, gzip, endianness and scaling', async () => {
    for (const ref of refs) {
      const out = await inspectJson(join(dir, ref.file));
      const where = `${ref.file} ${JSON.stringify(ref.variant)}`;
      assert.equal(out.ok, true);
      assert.deepEqual(out.dims, ref.dims, where);
      assert.equal((out.datatype as { name: string }).name, ref.datatype, where);
      assert.equal(out.endianness, ref.variant.endian === 'le' ? 'little' : 'big', where);
      assert.equal(out.compressed, Boolean(ref.variant.gzip), where);
      assertAffineClose(out.affine as number[][], ref.affine);
      const stats = out.stats as { min: number; max: number; mean: number };
      for (const key of ['min', 'max', 'mean'] as const) {
        assert.ok(closeRel(stats[key], ref[key], 1e-5), `${where}: ${key} ${stats[key]} vs nibabel ${ref[key]}`);
      }
    }
  });

  test('the real command line: JSON on stdout, text table, exit 0', () => {
    const file = join(dir, 'int16_be_scaled.nii.gz');
    const json = fedseg('inspect', file, '--json');
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { scaling: { slope: number; inter: number }; endianness: string };
    assert.deepEqual(parsed.scaling, { slope: 2.5, inter: -10 });
    assert.equal(parsed.endianness, 'big');
    const text = fedseg('inspect', file);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /datatype\s+int16 \(code 4\)/);
    assert.match(text.stdout, /scaling\s+value \* 2\.5 - 10/);
  });
});

describe('fedseg inspect on bad input', () => {
  test('exits 1 with one message naming the file and the reason, also as JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedseg-inspect-bad-'));
    try {
      const file = join(dir, 'notes.nii.gz');
      writeFileSync(file, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
      const out = fedseg('inspect', file, '--json');
      assert.equal(out.status, 1);
      const parsed = JSON.parse(out.stdout) as { ok: boolean; error: string };
      assert.equal(parsed.ok, false);
      assert.match(parsed.error, /notes\.nii\.gz: (truncated|corrupt) gzip/);
      const missingFile = fedseg('inspect', join(dir, 'none.nii'));
      assert.equal(missingFile.status, 1);
      assert.match(missingFile.stderr, /none\.nii: file does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
