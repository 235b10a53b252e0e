import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { maskData, writeCase } from './fixtures.js';

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

describe('fedseg validate', () => {
  let root = '';
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'fedseg-validate-cli-'));
    await writeCase(join(root, 'site-1'), 'BraTS20_Training_001');
    await writeCase(join(root, 'site-1'), 'BraTS20_Training_002', { mask: maskData([5]) });
    await writeCase(join(root, 'site-2'), 'BraTS20_Training_003', { ext: '.nii' });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('--json reports every case and exits 1 when one fails', () => {
    const out = fedseg('validate', root, '--json');
    assert.equal(out.status, 1, out.stderr);
    const report = JSON.parse(out.stdout) as { ok: boolean; failed: number; cases: { caseId: string; ok: boolean; errors: { file: string; reason: string }[] }[] };
    assert.equal(report.ok, false);
    assert.deepEqual(report.cases.map((c) => [c.caseId, c.ok]), [['BraTS20_Training_001', true], ['BraTS20_Training_002', false], ['BraTS20_Training_003', true]]);
    assert.match(report.cases[1].errors[0].file, /BraTS20_Training_002_seg\.nii\.gz$/);
    assert.match(report.cases[1].errors[0].reason, /found 5 \(1 voxel\)/);
  });

  test('text output: a line per case, the error naming case, file and reason', () => {
    const out = fedseg('validate', root);
    assert.equal(out.status, 1);
    assert.match(out.stdout, /site-1\/BraTS20_Training_001\s+OK\s+12x10x8\s+BraTS20_Training_001_seg\.nii\.gz/);
    assert.match(out.stdout, /site-1\/BraTS20_Training_002\s+FAILED/);
    assert.match(out.stdout, /error: case BraTS20_Training_002: BraTS20_Training_002_seg\.nii\.gz: mask values must be 0, 1, 2 or 4; found 5/);
    assert.match(out.stdout, /2 of 3 cases OK, 1 failed/);
  });

  test('exit 0 when every case is OK', () => {
    const out = fedseg('validate', join(root, 'site-2'), '--json');
    assert.equal(out.status, 0, out.stderr);
    assert.equal((JSON.parse(out.stdout) as { ok: boolean }).ok, true);
  });

  test('nonexistent path and empty folder: exit 1 with a clear message', () => {
    const gone = fedseg('validate', join(root, 'nowhere'));
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /nowhere: dataset folder does not exist/);
    const empty = mkdtempSync(join(tmpdir(), 'fedseg-validate-empty-'));
    try {
      const out = fedseg('validate', empty, '--json');
      assert.equal(out.status, 1);
      assert.match((JSON.parse(out.stdout) as { error: string }).error, /no BraTS cases found/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
