/**
 * Refusals travel as a typed code beside the server's words (core/federation/protocol.ts RefusalCodeSchema):
 * the server sends the code for each way a connection is refused, the site runtime passes it on, and the
 * app picks its message by the code, not by matching the words.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { AuthFailedSchema, type RefusalCode } from '../../core/federation/protocol.js';
import { FederationLink, refusalMessage, type FederationEvent } from '../../main/service/federation-link.js';
import { SiteStore } from '../../main/service/site-store.js';
import { removeSite } from '../../server/index.js';
import { FederationClient, type Refusal } from '../../site/client.js';
import { rawSocket, shiftTrainer, startSite, startTestServer, tempDir, waitFor } from './helpers.js';

const tmp = tempDir('refusals');
after(() => tmp.cleanup());

/** Sends `frames` on a fresh raw socket; resolves with the auth-failed message and the close frame. */
async function refusedAfter(url: string, frames: (string | Buffer)[]) {
  const socket = rawSocket(url);
  const reason = new Promise<string>((resolve) => socket.ws.on('close', (_code, r) => resolve(r.toString())));
  await socket.opened;
  for (const frame of frames) socket.ws.send(frame);
  const code = await socket.closed;
  const text = socket.received.find((m) => m.text !== undefined)?.text;
  assert.ok(text, 'an auth-failed message came before the close');
  return { message: AuthFailedSchema.parse(JSON.parse(text)), close: { code, reason: await reason } };
}

test('the server gives every refusal its code, in the auth-failed message and as the close reason, and audits it', async () => {
  const { server } = await startTestServer(join(tmp.dir, 'codes'), { rounds: 1 }, ['known']);
  try {
    const hello = (fields: Record<string, unknown>) => JSON.stringify({ type: 'hello', protocol: 1, token: 'not-registered', cases: { train: 1, validation: 1 }, ...fields });
    const cases: [RefusalCode, (string | Buffer)[]][] = [
      ['unknown-token', [hello({})]],
      ['protocol-version', [hello({ protocol: 2 })]],
      ['bad-hello', [JSON.stringify({ type: 'ping', t: 1 })]],
      ['bad-hello', ['not JSON']],
      ['frame-before-hello', [Buffer.alloc(16)]],
    ];
    for (const [code, frames] of cases) {
      const { message, close } = await refusedAfter(server.wsUrl, frames);
      assert.equal(message.code, code, message.reason);
      assert.ok(message.reason.length > 0);
      assert.deepEqual(close, { code: 4401, reason: code });
    }
    const audited = server.store.auditLog(0, 100).filter((e) => e.action === 'auth-failed').map((e) => (JSON.parse(e.detail) as { code: string }).code);
    assert.deepEqual(audited, cases.map(([code]) => code));
  } finally {
    await server.close();
  }
});

test('a site runtime reports a refusal as one refused event with its code, and no error', async () => {
  const { server } = await startTestServer(join(tmp.dir, 'runtime'), { rounds: 1 }, ['known']);
  try {
    const wrong = startSite(server, 'not-the-token', shiftTrainer(0.1));
    assert.equal(await wrong.site.done, 'refused');
    assert.deepEqual(wrong.events.filter((e) => e.type === 'refused' || e.type === 'error'),
      [{ type: 'refused', code: 'unknown-token', reason: 'unknown or revoked site token' }]);
  } finally {
    await server.close();
  }
});

test('a refusal known only from its close frame keeps its code; a close with no code is reported as another protocol', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const closeReasons = ['site-removed', 'go away'];
  wss.on('connection', (ws) => ws.close(4401, closeReasons.shift()));
  await new Promise((resolve) => wss.once('listening', resolve));
  try {
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws`;
    const refusals: Refusal[] = [];
    for (let i = 0; i < 2; i++) {
      const client = new FederationClient({ url, token: 't', cases: { train: 1, validation: 0 } });
      const refused = new Promise<Refusal>((resolve) => client.once('refused', resolve));
      client.start();
      refusals.push(await refused);
      client.stop();
    }
    assert.equal(refusals[0].code, 'site-removed');
    assert.equal(refusals[1].code, 'protocol-version');
    assert.match(refusals[1].reason, /go away/);
  } finally {
    await new Promise((resolve) => wss.close(resolve));
  }
});

test('the app words each refusal by its code: a wrong token fails connect, a removed site shows why it went offline', async () => {
  const { server, tokens, dbFile } = await startTestServer(join(tmp.dir, 'app'), { rounds: 1, minSites: 2, heartbeatS: 1 }, ['app-site']);
  const events: FederationEvent[] = [];
  const link = new FederationLink(new SiteStore(join(tmp.dir, 'app-state')), () => shiftTrainer(0.1), (e) => events.push(e));
  try {
    await assert.rejects(link.connect(server.wsUrl, 'not-the-token'), { message: refusalMessage({ code: 'unknown-token', reason: '' }) });
    assert.match(refusalMessage({ code: 'unknown-token', reason: '' }), /token is wrong or was revoked/);

    await link.connect(server.wsUrl, tokens['app-site']);
    const from = events.length;
    removeSite(dbFile, 'app-site');
    const offline = await waitFor(() => events.slice(from).find((e) => e.type === 'connection' && e.state.phase === 'offline' && e.state.error), 'the app told the site was removed');
    assert.ok(offline.type === 'connection');
    assert.equal(offline.state.error, refusalMessage({ code: 'site-removed', reason: 'site removed by the operator' }));
    assert.match(offline.state.error ?? '', /operator removed this site/);
  } finally {
    await link.disconnect();
    await server.close();
  }
  assert.match(refusalMessage({ code: 'protocol-version', reason: 'protocol version 2 is not supported (server speaks 1)' }), /different protocol versions \(protocol version 2/);
  assert.equal(refusalMessage({ code: 'hello-timeout', reason: 'no hello within 10 s' }), 'The server refused this site: no hello within 10 s.');
});
