/**
 * The upload gate (server/upload-gate.ts) over real sockets: with its two slots held by sites that
 * started a weight frame and went quiet, other sites' uploads wait paused, then get a slot when
 * the stalled connections are closed, so the round still completes.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { makeModelConfig } from '../../core/model/config.js';
import { architectureHash } from '../../core/weights/index.js';
import { rawSocket, ScriptedSite, shifted, startTestServer, tempDir, waitFor } from './helpers.js';

const tmp = tempDir('upload-gate');
after(() => tmp.cleanup());

// 350,916 parameters: 1.4 MB update frames, past the gate's 1 MiB threshold.
const model = { baseFilters: 8, depth: 4, inputShape: [16, 16, 16] as [number, number, number] };
const config = makeModelConfig(model);

/** Authenticates, then sends 1.5 MB of a 3 MB binary frame (unmasked: mask key 0) and stops. */
async function stall(url: string, token: string) {
  const s = rawSocket(url);
  await s.opened;
  s.ws.send(JSON.stringify({ type: 'hello', protocol: 1, token, cases: { train: 4, validation: 2 } }));
  await waitFor(() => s.received.some((m) => m.text?.includes('"welcome"')), 'welcome');
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(3_000_000n, 2);
  (s.ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(Buffer.concat([header, Buffer.alloc(1_500_000)]));
  return s;
}

test('uploads beyond the slots wait, and a stalled upload is closed to free its slot', async () => {
  // A 64 MiB frame cap leaves room for 2 uploads in the gate's 128 MiB; long heartbeats, so only
  // the gate's stall rule can free the stalled slots.
  const { server, tokens } = await startTestServer(tmp.dir, {
    rounds: 1, minSites: 2, model, maxMessageBytes: 64 * 1024 * 1024, heartbeatS: 30, approvalDeadlineS: 3, trainingDeadlineS: 120,
  }, ['h1', 'h2', 'stall1', 'stall2'], { h1: 4, h2: 4 });
  try {
    const honest = ['h1', 'h2'].map((s) => new ScriptedSite(server.wsUrl, tokens[s]).start());
    const joined = await Promise.all(honest.map(async (site) => {
      const a = await site.announce(1);
      site.client.send({ type: 'approve', round: 1, attempt: a.attempt });
      return { attempt: a.attempt, ...(await site.trainWeights(1)) };
    }));
    const stalled = await Promise.all([stall(server.wsUrl, tokens.stall1), stall(server.wsUrl, tokens.stall2)]);
    await new Promise((r) => setTimeout(r, 300));
    const sentAt = Date.now();
    const verdicts = honest.map((site, k) => {
      const count = site.messages.length;
      site.sendUpdate(1, joined[k].attempt, shifted(joined[k].weights, 0.1), { architectureHash: architectureHash(config) }, config);
      return site.verdict(1, count);
    });
    for (const v of await Promise.all(verdicts)) assert.equal(v.type, 'update-accepted');
    assert.ok(Date.now() - sentAt >= 9000, 'the honest uploads waited for the stalled connections to be closed');
    for (const s of stalled) assert.equal(await s.closed, 1006, 'a stalled upload is cut off');
    assert.equal(await server.federation.done, 'finished');
    for (const h of honest) h.stop();
  } finally {
    await server.close();
  }
});
