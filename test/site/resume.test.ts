import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { SiteRuntime } from '../../site/runtime.js';
import { api, shiftTrainer, startSite, startTestServer, tempDir, waitFor } from '../server/helpers.js';

const tmp = tempDir('resume');
after(() => tmp.cleanup());

test('a site whose connection drops mid-training reconnects, resumes, and its update counts', async () => {
  const { server, tokens } = await startTestServer(`${tmp.dir}/a`, { rounds: 1, minSites: 2 }, ['steady', 'flaky']);
  try {
    const steady = startSite(server, tokens.steady, shiftTrainer(0.1, { train: 2, validation: 1 }));
    const flaky = startSite(server, tokens.flaky, shiftTrainer(0.3, { train: 2, validation: 1 }, { delayMs: 800 }));
    await waitFor(() => flaky.events.some((e) => e.type === 'training-started'), 'flaky to start training');
    // Cut the socket without a close handshake, as a network failure would.
    const client = (flaky.site as unknown as { client: { ws: WebSocket } }).client;
    client.ws.terminate();
    assert.equal(await server.federation.done, 'finished');
    const { body: rounds } = await api<{ round: number; status: string; sites_returned: number }[]>(server, '/api/rounds');
    assert.deepEqual(rounds.filter((r) => r.round === 1).map((r) => [r.status, r.sites_returned]), [['completed', 2]]);
    const { body: log } = await api<{ action: string; actor: string }[]>(server, '/api/audit');
    assert.ok(log.some((e) => e.action === 'site-resumed' && e.actor === 'flaky'));
    assert.equal(flaky.events.filter((e) => e.type === 'training-started').length, 1, 'training is not restarted by the resume');
    assert.ok(flaky.events.some((e) => e.type === 'update-accepted'));
    await Promise.all([steady.site.done, flaky.site.done]);
  } finally {
    await server.close();
  }
});

test('an authenticated connection that goes silent is dropped by the heartbeat', async () => {
  const { server, tokens } = await startTestServer(`${tmp.dir}/b`, { rounds: 1, minSites: 2, heartbeatS: 0.3 }, ['silent', 'other']);
  try {
    const ws = new WebSocket(server.wsUrl);
    await new Promise((resolve) => ws.on('open', resolve));
    ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: tokens.silent, cases: { train: 1, validation: 1 } }));
    // Never answers pings: the server terminates it after three missed heartbeats.
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    assert.equal(code, 1006);
    const { body: log } = await api<{ action: string; actor: string }[]>(server, '/api/audit');
    assert.ok(log.some((e) => e.action === 'heartbeat-timeout' && e.actor === 'silent'));
  } finally {
    await server.close();
  }
});

test('a wrong token ends the site runtime as refused with one clear error; an unreachable server is reported with its cause', async () => {
  const { server } = await startTestServer(`${tmp.dir}/c`, { rounds: 1 }, ['known']);
  try {
    const wrong = startSite(server, 'not-the-token', shiftTrainer(0.1));
    assert.equal(await wrong.site.done, 'refused');
    assert.deepEqual(wrong.events.filter((e) => e.type === 'refused' || e.type === 'error'),
      [{ type: 'refused', code: 'unknown-token', reason: 'unknown or revoked site token' }]);
  } finally {
    await server.close();
  }
  const offline = new SiteRuntime({ url: 'ws://127.0.0.1:9/ws', token: 't', trainer: shiftTrainer(0.1), approve: () => true, initialBackoffMs: 50 });
  const reason = new Promise<string>((resolve) => offline.on('event', (e) => e.type === 'disconnected' && resolve(e.reason)));
  await offline.start();
  assert.match(await reason, /ECONNREFUSED/);
  offline.stop();
  assert.equal(await offline.done, 'stopped');
});
