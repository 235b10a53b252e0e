import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { registerSite, startServer } from '../../server/index.js';
import { FederationClient } from '../../site/client.js';
import { ADMIN, federationConfig, tempDir, waitFor } from './helpers.js';

const tmp = tempDir('tls');
after(() => tmp.cleanup());
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

function fedseg(...args: string[]) {
  return spawnSync(process.execPath, ['bin/fedseg.js', ...args], { encoding: 'utf8' });
}

test('the server refuses a non-loopback address without TLS unless --insecure', async () => {
  await assert.rejects(startServer({ config: federationConfig(), dbFile: join(tmp.dir, 'a.db'), host: '0.0.0.0', port: 0 }), /without TLS/);
  const insecure = await startServer({ config: federationConfig(), dbFile: join(tmp.dir, 'b.db'), host: '0.0.0.0', port: 0, insecure: true });
  await insecure.close();
});

test('wss:// with a certificate: a site trusting the CA authenticates and uploads over https; the admin API is served over https', { skip: !hasOpenssl && 'openssl not installed' }, async () => {
  const key = join(tmp.dir, 'key.pem');
  const cert = join(tmp.dir, 'cert.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  assert.equal(made.status, 0, made.stderr?.toString());
  const dbFile = join(tmp.dir, 'tls.db');
  const { token } = registerSite(dbFile, 'secure');
  const server = await startServer({ config: federationConfig(), dbFile, port: 0, tls: { certFile: cert, keyFile: key }, adminToken: ADMIN });
  try {
    assert.match(server.wsUrl, /^wss:\/\//);
    const client = new FederationClient({ url: server.wsUrl, token, cases: { train: 1, validation: 0 }, ca: readFileSync(cert) });
    const welcomed = new Promise<string>((resolve) => client.on('welcome', (site) => resolve(site)));
    const errors: string[] = [];
    client.on('message', (m) => void (m.type === 'error' && errors.push(m.message)));
    client.start();
    assert.equal(await welcomed, 'secure');
    // The upload goes to the same origin over https, trusting the same CA; it is no frame, and the server says so.
    void client.upload(Buffer.alloc(64));
    await waitFor(() => errors.some((e) => /FedSeg prelude/.test(e)), 'the answer to an upload over https');
    client.stop();
    const untrusting = new FederationClient({ url: server.wsUrl, token, cases: { train: 1, validation: 0 }, initialBackoffMs: 60_000 });
    const dropped = new Promise<string>((resolve) => untrusting.on('disconnected', (reason) => resolve(reason)));
    untrusting.start();
    await dropped; // certificate not trusted: no connection
    untrusting.stop();
    await waitFor(() => server.store.auditLog().some((e) => e.action === 'site-connected'), 'audit of the TLS connection');
    const status = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      get(`${server.httpUrl}/api/status`, { ca: readFileSync(cert), headers: { authorization: `Bearer ${ADMIN}` } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
    assert.equal(status.code, 200);
    assert.match(status.body, /"sitesOnline"/);
  } finally {
    await server.close();
  }
});

test('fedseg server add-site prints a token once and stores only its hash; list-sites and remove-site', () => {
  const db = join(tmp.dir, 'cli.db');
  const added = fedseg('server', 'add-site', 'hospital-1', '--db', db, '--json');
  assert.equal(added.status, 0, added.stderr);
  const { token } = JSON.parse(added.stdout) as { token: string };
  assert.ok(token.length >= 40);
  assert.ok(!readFileSync(db).includes(Buffer.from(token)), 'the token itself is not stored');
  assert.equal(fedseg('server', 'add-site', 'hospital-1', '--db', db).status, 1, 'duplicate names are refused');
  assert.equal(fedseg('server', 'add-site', '../evil', '--db', db).status, 1);
  const listed = JSON.parse(fedseg('server', 'list-sites', '--db', db, '--json').stdout) as { sites: { name: string; removed_at: string | null }[] };
  assert.deepEqual(listed.sites.map((s) => [s.name, s.removed_at]), [['hospital-1', null]]);
  assert.equal(fedseg('server', 'remove-site', 'hospital-1', '--db', db).status, 0);
  const removed = fedseg('server', 'remove-site', 'hospital-1', '--db', db, '--json');
  assert.equal(removed.status, 1);
  assert.match(removed.stderr, /no registered site named "hospital-1"/);
  const bad = fedseg('server', 'start', '--db', db, '--config', join(tmp.dir, 'missing.json'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /cannot read federation config/);
  const neverDb = join(tmp.dir, 'never.db');
  const noKey = fedseg('server', 'start', '--db', neverDb, '--config', join(tmp.dir, 'missing.json'), '--cert', join(tmp.dir, 'missing-cert.pem'), '--key', join(tmp.dir, 'missing-key.pem'));
  assert.equal(noKey.status, 1);
  assert.match(noKey.stderr, /missing-cert\.pem: field cert: cannot read the TLS certificate \(ENOENT\)/);
  assert.equal(existsSync(neverDb), false, 'checked before the server creates its database');
});

test('add-site --token-file writes the token to a new file readable only by its owner, and never overwrites one', () => {
  const db = join(tmp.dir, 'token-file.db');
  const file = join(tmp.dir, 'hospital-2.token');
  const added = fedseg('server', 'add-site', 'hospital-2', '--db', db, '--token-file', file);
  assert.equal(added.status, 0, added.stderr);
  assert.match(added.stdout, /token is in .*hospital-2\.token/);
  const token = readFileSync(file, 'utf8').trim();
  assert.match(token, /^[A-Za-z0-9][A-Za-z0-9_-]{42}$/);
  assert.ok(!added.stdout.includes(token), 'the token is not printed when it goes to a file');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const again = fedseg('server', 'add-site', 'hospital-3', '--db', db, '--token-file', file);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /hospital-2\.token: field token-file: the token file already exists/);
  assert.equal(readFileSync(file, 'utf8').trim(), token);
  const listed = JSON.parse(fedseg('server', 'list-sites', '--db', db, '--json').stdout) as { sites: { name: string }[] };
  assert.deepEqual(listed.sites.map((s) => s.name), ['hospital-2'], 'a refused token file registers nothing');
});

test('D9: the admin token never comes from argv and must be strong; add-site --cases registers the cap', () => {
  const db = join(tmp.dir, 'cli-admin.db');
  const config = join(tmp.dir, 'federation.json');
  writeFileSync(config, JSON.stringify({ rounds: 1, model: { baseFilters: 2, depth: 2, inputShape: [16, 16, 16] } }));
  const argv = fedseg('server', 'start', '--db', db, '--config', config, '--admin-token', 'a-perfectly-strong-token-1234567');
  assert.equal(argv.status, 1);
  assert.match(argv.stderr, /--admin-token on the command line is visible to every user/);
  const weakFile = join(tmp.dir, 'weak-token');
  writeFileSync(weakFile, 'admin\n', { mode: 0o600 });
  const weak = fedseg('server', 'start', '--db', db, '--config', config, '--admin-token-file', weakFile);
  assert.equal(weak.status, 1);
  assert.match(weak.stderr, /admin token is too weak/);
  const added = fedseg('server', 'add-site', 'capped', '--db', db, '--cases', '12', '--json');
  assert.equal(added.status, 0, added.stderr);
  assert.equal(fedseg('server', 'set-cases', 'capped', '--db', db, '--cases', '15').status, 0);
  const listed = JSON.parse(fedseg('server', 'list-sites', '--db', db, '--json').stdout) as { sites: { name: string; registered_cases: number }[] };
  assert.deepEqual(listed.sites.map((s) => [s.name, s.registered_cases]), [['capped', 15]]);
});
