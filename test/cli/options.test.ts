import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { choiceOption, intOption, numberOption, requiredOption } from '../../cli/options.js';

/** What parseArgs gives for string options: a value or nothing. */
function opts(values: Record<string, string | undefined>): Record<string, string | undefined> {
  return values;
}

/** Asserts `fn` throws a FedSegError for field `field` whose message matches `message`. */
function rejects(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FedSegError, `expected a FedSegError, got ${String(err)}`);
    assert.equal(err.where.field, field);
    assert.match(err.message, message);
    return true;
  });
}

test('intOption: absent gives the fallback (or undefined), present must be a decimal integer in range', () => {
  assert.equal(intOption(opts({}), 'epochs', { min: 1, fallback: 10 }), 10);
  assert.equal(intOption(opts({}), 'window', { min: 1 }), undefined);
  assert.equal(intOption(opts({ epochs: '3' }), 'epochs', { min: 1, fallback: 10 }), 3);
  assert.equal(intOption(opts({ seed: '-7' }), 'seed'), -7);
  assert.equal(intOption(opts({ port: ' 0 ' }), 'port', { min: 0, max: 65535 }), 0);
  assert.equal(intOption(opts({ port: '65535' }), 'port', { min: 0, max: 65535 }), 65535);

  rejects(() => intOption(opts({ epochs: '0' }), 'epochs', { min: 1 }), 'epochs', /^field epochs: --epochs must be a positive integer, got "0"$/);
  rejects(() => intOption(opts({ epochs: '2.5' }), 'epochs', { min: 1 }), 'epochs', /--epochs must be a positive integer, got "2.5"/);
  rejects(() => intOption(opts({ sites: '-1' }), 'sites', { min: 0 }), 'sites', /--sites must be a non-negative integer, got "-1"/);
  rejects(() => intOption(opts({ port: '65536' }), 'port', { min: 0, max: 65535 }), 'port', /--port must be an integer from 0 to 65535, got "65536"/);
  rejects(() => intOption(opts({ depth: '9' }), 'depth', { max: 5 }), 'depth', /--depth must be an integer <= 5/);
  rejects(() => intOption(opts({ depth: '1' }), 'depth', { min: 2 }), 'depth', /--depth must be an integer >= 2/);
  // Typos that Number() would quietly turn into numbers.
  for (const text of ['', ' ', '1e3', '0x10', '12abc', '9007199254740993']) {
    rejects(() => intOption(opts({ seed: text }), 'seed'), 'seed', /--seed must be an integer, got "/);
  }
});

test('numberOption: finite numbers meeting the check; the message states the rule', () => {
  assert.equal(numberOption(opts({}), 'lr', { fallback: 1e-4 }), 1e-4);
  assert.equal(numberOption(opts({}), 'lr'), undefined);
  assert.equal(numberOption(opts({ lr: '3e-4' }), 'lr', { check: (n) => n > 0, rule: 'a positive number' }), 3e-4);
  assert.equal(numberOption(opts({ overlap: '0' }), 'overlap', { check: (n) => n >= 0 && n < 1, rule: 'in [0, 1)' }), 0);

  rejects(() => numberOption(opts({ overlap: '1' }), 'overlap', { check: (n) => n >= 0 && n < 1, rule: 'in [0, 1)' }), 'overlap',
    /^field overlap: --overlap must be in \[0, 1\), got "1"$/);
  rejects(() => numberOption(opts({ lr: 'fast' }), 'lr'), 'lr', /--lr must be a number, got "fast"/);
  rejects(() => numberOption(opts({ lr: 'Infinity' }), 'lr'), 'lr', /--lr must be a number/);
  rejects(() => numberOption(opts({ lr: '' }), 'lr'), 'lr', /--lr must be a number, got ""/);
  rejects(() => numberOption(opts({ lr: '-1' }), 'lr', { check: (n) => n > 0, rule: 'a positive number' }), 'lr', /--lr must be a positive number, got "-1"/);
});

test('choiceOption: one of the allowed values, listed in the message', () => {
  const modes = ['gaussian', 'uniform'] as const;
  const blending: 'gaussian' | 'uniform' = choiceOption(opts({}), 'blending', modes, 'gaussian');
  assert.equal(blending, 'gaussian');
  assert.equal(choiceOption(opts({}), 'blending', modes), undefined);
  assert.equal(choiceOption(opts({ blending: 'uniform' }), 'blending', modes, 'gaussian'), 'uniform');
  rejects(() => choiceOption(opts({ blending: 'Uniform' }), 'blending', modes), 'blending', /--blending must be one of gaussian, uniform, got "Uniform"/);
});

test('requiredOption: returns the value; absent, empty or an empty list names the flag', () => {
  assert.equal(requiredOption({ out: 'model.fsm' }, 'out'), 'model.fsm');
  assert.deepEqual(requiredOption({ data: ['a', 'b'] }, 'data'), ['a', 'b']);
  rejects(() => requiredOption(opts({}), 'out', { metavar: 'FILE', note: 'the model file to write' }), 'out',
    /^field out: --out FILE is required \(the model file to write\)$/);
  rejects(() => requiredOption({ out: '' }, 'out'), 'out', /--out is required$/);
  rejects(() => requiredOption({ data: [] as string[] }, 'data', { metavar: 'DIR' }), 'data', /--data DIR is required/);
});

test('a bad numeric option exits 1 naming the option, on different commands', () => {
  const fedseg = (...args: string[]) => spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
  // Both fail before touching the (nonexistent) files, so nothing is written anywhere.
  const train = fedseg('train', '--data', 'no-such-dir', '--out', 'no-such-dir/m.fsm', '--epochs', 'ten');
  assert.equal(train.status, 1, train.stderr);
  assert.match(train.stderr, /fedseg train: field epochs: --epochs must be a positive integer, got "ten"/);

  const server = fedseg('server', 'start', '--db', 'no-such-dir/s.db', '--config', 'no-such.json', '--port', '70000', '--json');
  assert.equal(server.status, 1, server.stderr);
  assert.match(server.stderr, /--port must be an integer from 0 to 65535, got "70000"/);
  assert.deepEqual(JSON.parse(server.stdout), { ok: false, error: 'field port: --port must be an integer from 0 to 65535, got "70000"' });
});
