/** Tokens on the command line: from --NAME, --NAME-file or the environment, and never starting with "-". */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { secretOption } from '../../cli/options.js';
import { FedSegError } from '../../core/errors.js';
import { newToken } from '../../server/tokens.js';

const dir = mkdtempSync(join(tmpdir(), 'fedseg-secret-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a token comes from the option, else the file (first non-empty line, trimmed), else the environment', () => {
  const file = join(dir, 'site.token');
  writeFileSync(file, '\n  abc123  \nsecond line ignored\n');
  process.env.FEDSEG_TEST_TOKEN = ' from-env ';
  try {
    assert.equal(secretOption('token', { value: 'direct', env: 'FEDSEG_TEST_TOKEN' }), 'direct');
    assert.equal(secretOption('token', { file, env: 'FEDSEG_TEST_TOKEN' }), 'abc123');
    assert.equal(secretOption('token', { env: 'FEDSEG_TEST_TOKEN' }), 'from-env');
    delete process.env.FEDSEG_TEST_TOKEN;
    assert.equal(secretOption('token', { env: 'FEDSEG_TEST_TOKEN' }), undefined);
  } finally {
    delete process.env.FEDSEG_TEST_TOKEN;
  }
});

test('$ENV_FILE names a file holding the token (mounted container secrets); with $ENV as well it is an error', () => {
  const file = join(dir, 'mounted.token');
  writeFileSync(file, 'from-mounted-file\n');
  try {
    process.env.FEDSEG_TEST_TOKEN_FILE = file;
    assert.equal(secretOption('admin-token', { env: 'FEDSEG_TEST_TOKEN' }), 'from-mounted-file');
    assert.equal(secretOption('admin-token', { value: 'direct', env: 'FEDSEG_TEST_TOKEN' }), 'direct', 'an option still wins');
    process.env.FEDSEG_TEST_TOKEN = 'from-env';
    assert.throws(() => secretOption('admin-token', { env: 'FEDSEG_TEST_TOKEN' }),
      (err: unknown) => err instanceof FedSegError && err.where.field === 'FEDSEG_TEST_TOKEN_FILE' && /set \$FEDSEG_TEST_TOKEN or \$FEDSEG_TEST_TOKEN_FILE, not both/.test(err.message));
    delete process.env.FEDSEG_TEST_TOKEN;
    process.env.FEDSEG_TEST_TOKEN_FILE = join(dir, 'not-mounted');
    assert.throws(() => secretOption('admin-token', { env: 'FEDSEG_TEST_TOKEN' }),
      (err: unknown) => err instanceof FedSegError && err.where.field === 'FEDSEG_TEST_TOKEN_FILE' && /not-mounted: field FEDSEG_TEST_TOKEN_FILE: cannot read the admin-token file \(ENOENT\)/.test(err.message));
  } finally {
    delete process.env.FEDSEG_TEST_TOKEN;
    delete process.env.FEDSEG_TEST_TOKEN_FILE;
  }
});

test('a missing or empty token file, or both sources at once, is an error naming the file and the option', () => {
  const empty = join(dir, 'empty.token');
  writeFileSync(empty, '\n \n');
  const cases: [() => unknown, string, RegExp][] = [
    [() => secretOption('token', { file: join(dir, 'missing'), env: 'X' }), 'token-file', /missing: field token-file: cannot read the token file \(ENOENT\)/],
    [() => secretOption('admin-token', { file: empty, env: 'X' }), 'admin-token-file', /empty\.token: field admin-token-file: the admin-token file is empty/],
    [() => secretOption('token', { value: 'a', file: empty, env: 'X' }), 'token', /give --token or --token-file, not both/],
    [() => secretOption('token', { value: '  ', env: 'X' }), 'token', /--token is empty/],
  ];
  for (const [fn, field, message] of cases) {
    assert.throws(fn, (err: unknown) => err instanceof FedSegError && err.where.field === field && message.test(err.message));
  }
});

test('new tokens are base64url of 32 bytes and never start with "-" or "_", so `--token "$T"` always parses', () => {
  for (let i = 0; i < 2000; i++) {
    const token = newToken();
    assert.match(token, /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/);
  }
});
