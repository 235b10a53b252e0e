/**
 * Issue 10, D4-D12, over real sockets and HTTP on 127.0.0.1: what an outside attacker did to a
 * running server, replayed, each failing on the code before the fix.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { removeSite, startServer, type RunningServer } from '../../server/index.js';
import { ADMIN, api, federationConfig, rawSocket, ScriptedSite, shifted, shiftTrainer, startSite, startTestServer, tempDir } from './helpers.js';

const tmp = tempDir('hardening');
after(() => tmp.cleanup());
let n = 0;
const dir = () => `${tmp.dir}/${++n}`;
const audit = (server: RunningServer) => server.store.auditLog(0, 10_000);

/** Approves `round` and returns its attempt and training weights. */
async function join1(site: ScriptedSite, round = 1) {
  const a = await site.announce(round);
  site.client.send({ type: 'approve', round, attempt: a.attempt });
  return { attempt: a.attempt, ...(await site.trainWeights(round)) };
}

test('D4: remove-site disconnects a live site at once and its round goes on without it', async () => {
  const d = dir();
  const { server, tokens, dbFile } = await startTestServer(d, { rounds: 1, minSites: 2, heartbeatS: 1 }, ['a', 'b', 'gone']);
  try {
    const honest = ['a', 'b'].map((s) => startSite(server, tokens[s], shiftTrainer(0.1, undefined, { delayMs: 1500 })));
    const gone = new ScriptedSite(server.wsUrl, tokens.gone).start();
    await join1(gone);
    const closed = new Promise<number>((resolve) => (gone.client as unknown as { ws: WebSocket }).ws.once('close', (code) => resolve(code)));
    removeSite(dbFile, 'gone'); // what `fedseg server remove-site` does, from another connection to the DB
    assert.equal(await closed, 4401);
    gone.stop();
    assert.equal(await server.federation.done, 'finished');
    const completed = audit(server).find((e) => e.action === 'round-completed')!;
    assert.deepEqual(JSON.parse(completed.detail).sites, ['a', 'b']);
    assert.ok(audit(server).some((e) => e.action === 'site-revoked-disconnected' && JSON.parse(e.detail).site === 'gone'));
    await Promise.all(honest.map((h) => h.site.done));
  } finally {
    await server.close();
  }
});

test('D5: an evaluation with a huge case count cannot set the global Dice, and cannot be re-sent', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 3 }, ['a', 'b', 'liar']);
  try {
    const honest = ['a', 'b'].map((s) => startSite(server, tokens[s], shiftTrainer(0.1, { train: 2, validation: 1 })));
    const liar = new ScriptedSite(server.wsUrl, tokens.liar).start();
    const { attempt, weights } = await join1(liar);
    liar.sendUpdate(1, attempt, shifted(weights, 0.1), { numCases: 2 });
    await liar.until(() => liar.globals.find((g) => g.purpose === 'evaluate' && g.round === 1), 'the global model to evaluate');
    liar.client.send({ type: 'evaluation', round: 1, numCases: 1e9, metrics: { dice_WT: 0.999 } });
    liar.client.send({ type: 'evaluation', round: 1, numCases: 1e9, metrics: { dice_WT: 0.999 } });
    liar.client.send({ type: 'evaluation', round: 0, numCases: 1e9, metrics: { dice_WT: 0.999 } });
    const errors = await liar.until(() => {
      const e = liar.messages.filter((m) => m.type === 'error');
      return e.length === 2 ? e : undefined;
    }, 'two refused evaluations');
    assert.ok(errors.every((e) => e.type === 'error' && /was not asked for/.test(e.message)));
    assert.equal(await server.federation.done, 'finished');
    const { body: rounds } = await api<{ round: number; globalMetrics: Record<string, number> | null }[]>(server, '/api/rounds');
    // Honest sites report 0.6 on 1 case each; the liar's count is capped at the median (1).
    const dice = rounds.find((r) => r.round === 1)!.globalMetrics!.dice_WT;
    assert.ok(Math.abs(dice - (0.6 + 0.6 + 0.999) / 3) < 1e-9, `global Dice ${dice}`);
    liar.stop();
    await Promise.all(honest.map((h) => h.site.done));
  } finally {
    await server.close();
  }
});

test('D7: a site gets one resend of the round\'s weights, not one per request; a stream of bad messages closes it', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 1, approvalDeadlineS: 3 }, ['greedy', 'noisy']);
  try {
    const greedy = new ScriptedSite(server.wsUrl, tokens.greedy).start();
    const { attempt, weights } = await join1(greedy);
    for (let i = 0; i < 15; i++) greedy.client.send({ type: 'resend-weights', round: 1 });
    await greedy.until(() => greedy.messages.filter((m) => m.type === 'error').length === 14 || undefined, '14 refused resends');
    assert.equal(greedy.globals.filter((g) => g.purpose === 'train').length, 2, 'the first send and one resend');

    const noisy = rawSocket(server.wsUrl);
    await noisy.opened;
    noisy.ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: tokens.noisy, cases: { train: 1, validation: 1 } }));
    for (let i = 0; i < 30; i++) noisy.ws.send('not json');
    assert.equal(await noisy.closed, 4400);
    assert.equal(audit(server).filter((e) => e.actor === 'noisy' && e.action === 'protocol-error').length, 20);

    greedy.sendUpdate(1, attempt, shifted(weights, 0.1));
    assert.equal(await server.federation.done, 'finished');
    greedy.stop();
  } finally {
    await server.close();
  }
});

test('D8: a site left out after a rejected update cannot get back in with a valid one', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 1 }, ['a', 'sly']);
  try {
    const a = startSite(server, tokens.a, shiftTrainer(0.1, undefined, { delayMs: 1500 }));
    const sly = new ScriptedSite(server.wsUrl, tokens.sly).start();
    const { attempt, weights } = await join1(sly);
    const bad = shifted(weights, 0.5);
    bad[0].data[0] = NaN;
    sly.sendUpdate(1, attempt, bad);
    await sly.until(() => sly.messages.find((m) => m.type === 'left-out'), 'left-out');
    const count = sly.messages.length;
    sly.sendUpdate(1, attempt, shifted(weights, 0.5));
    const second = await sly.verdict(1, count);
    assert.equal(second.type, 'update-rejected');
    assert.match(second.type === 'update-rejected' ? second.reason : '', /left out/);
    assert.equal(await server.federation.done, 'finished');
    assert.deepEqual(JSON.parse(audit(server).find((e) => e.action === 'round-completed')!.detail).sites, ['a']);
    sly.stop();
    await a.site.done;
  } finally {
    await server.close();
  }
});

test('D6: a connection that sends more than 64 KiB before authenticating is cut off there', async () => {
  const { server } = await startTestServer(dir(), { rounds: 1 });
  try {
    const big = rawSocket(server.wsUrl);
    await big.opened;
    // Under the frame cap (the tiny model's weights + 1 MiB), which a larger frame would hit first.
    big.ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: 'x'.repeat(512 * 1024), cases: { train: 1, validation: 1 } }));
    assert.equal(await big.closed, 1006, 'terminated, not answered');
    assert.ok(big.received.length === 0);
    const entry = audit(server).find((e) => e.action === 'pre-auth-limit')!;
    assert.match(JSON.parse(entry.detail).reason, /more than 65536 bytes before authenticating/);
  } finally {
    await server.close();
  }
});

test('D10: ten wrong tokens lock the address out of both the site endpoint and the operator API; failures are audited once each', async () => {
  const { server } = await startTestServer(dir(), { rounds: 1 });
  try {
    for (let i = 0; i < 5; i++) {
      const s = rawSocket(server.wsUrl);
      await s.opened;
      s.ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: `guess-${i}`, cases: { train: 1, validation: 1 } }));
      assert.equal(await s.closed, 4401);
    }
    for (let i = 0; i < 5; i++) assert.equal((await api(server, '/api/status', `wrong-admin-${i}`)).status, 401);
    const locked = await api(server, '/api/status', ADMIN);
    assert.equal(locked.status, 429, 'even the right token waits out the lockout');
    assert.deepEqual(await api(server, '/healthz', ''), { status: 200, body: { ok: true } }, 'health checks still pass, and tell nothing more');
    const refused = new WebSocket(server.wsUrl);
    const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 429);
    for (let i = 0; i < 20; i++) await api(server, '/api/status', 'more-guesses');
    const log = audit(server);
    assert.equal(log.filter((e) => e.action === 'auth-failed').length, 5);
    assert.equal(log.filter((e) => e.action === 'admin-auth-failed').length, 5, 'failed admin logins are audited, up to the lockout');
  } finally {
    await server.close();
  }
});

test('D11 + D12: audit query is validated, errors leak nothing, every response carries the security headers, browsers cannot open the socket', async () => {
  const { server } = await startTestServer(dir(), { rounds: 1 });
  try {
    for (const q of ['limit=-1', 'limit=0.5', 'after=x']) {
      const { status, body } = await api<{ error: string; field: string }>(server, `/api/audit?${q}`);
      assert.equal(status, 400, q);
      assert.equal(body.field, q.split('=')[0]);
      assert.doesNotMatch(body.error, /sqlite|SQL/i);
    }
    assert.equal((await api<unknown[]>(server, '/api/audit?limit=2')).body.length, 2);
    for (const [path, token, expected] of [['/', ADMIN, 200], ['/api/status', ADMIN, 200], ['/api/nothing', ADMIN, 404], ['/api/status', '', 401]] as const) {
      const res = await fetch(`${server.httpUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      assert.equal(res.status, expected);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    }
    const browser = new WebSocket(server.wsUrl, { origin: 'https://evil.example' });
    const status = await new Promise<number>((resolve) => browser.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    assert.equal(status, 403);
  } finally {
    await server.close();
  }
});

test('D9: the DB, its WAL and checkpoints are 0600 in 0700 folders; tokens are stored salted and slow-hashed; a weak admin token is refused', async () => {
  const d = dir();
  const { server, tokens, dbFile } = await startTestServer(d, { rounds: 1, minSites: 1, approvalDeadlineS: 2 }, ['a', 'b']);
  try {
    const a = startSite(server, tokens.a, shiftTrainer(0.1));
    assert.equal(await server.federation.done, 'finished');
    await a.site.done;
    for (const f of [dbFile, `${dbFile}-wal`, ...readdirSync(join(d, 'checkpoints')).map((f) => join(d, 'checkpoints', f))]) {
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
    }
    assert.equal(statSync(d).mode & 0o777, 0o700);
    assert.equal(statSync(join(d, 'checkpoints')).mode & 0o777, 0o700);
  } finally {
    await server.close();
  }
  const db = new Database(dbFile, { readonly: true });
  const hashes = [...(db.prepare('SELECT token_hash AS h FROM sites').all() as { h: string }[]).map((r) => r.h), (db.prepare("SELECT value AS h FROM meta WHERE key = 'admin_token_hash'").get() as { h: string }).h];
  db.close();
  for (const h of hashes) assert.match(h, /^scrypt\$16384\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  assert.equal(new Set(hashes.map((h) => h.split('$')[4])).size, hashes.length, 'every hash has its own salt');
  await assert.rejects(startServer({ config: federationConfig(), dbFile, port: 0, adminToken: 'admin123' }), /admin token is too weak/);
});
