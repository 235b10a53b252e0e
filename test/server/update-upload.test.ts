/**
 * Update uploads (server/update-upload.ts) over real HTTP and WebSocket connections: the session's
 * ticket, a Content-Length within the frame cap and a free slot are required before a byte of the
 * body is read; the WebSocket takes control messages only; uploads beyond the slots wait, and a
 * stalled upload is cut off to free its slot so the round still completes.
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, test } from 'node:test';
import { SITE_MESSAGE_MAX_BYTES, UPLOAD_PATH } from '../../core/federation/protocol.js';
import { makeModelConfig } from '../../core/model/config.js';
import { architectureHash } from '../../core/weights/index.js';
import type { RunningServer } from '../../server/index.js';
import { rawSocket, ScriptedSite, shifted, startTestServer, tempDir, waitFor } from './helpers.js';

const tmp = tempDir('update-upload');
after(() => tmp.cleanup());
let runs = 0;
const dir = () => `${tmp.dir}/${++runs}`;

/** Says hello on a raw socket; returns it with the upload ticket from welcome. */
async function session(url: string, token: string) {
  const s = rawSocket(url);
  await s.opened;
  s.ws.send(JSON.stringify({ type: 'hello', protocol: 1, token, cases: { train: 4, validation: 2 } }));
  const welcome = await waitFor(() => s.received.find((m) => m.text?.includes('"welcome"')), 'welcome');
  return { ...s, ticket: (JSON.parse(welcome.text!) as { uploadTicket: string }).uploadTicket };
}

interface Put {
  status: number;
  body: string;
  /** Whether the server let the body be sent (100 Continue). */
  continued: boolean;
}

/** A PUT that announces `length` bytes and sends `send` of them once the server says 100 Continue. */
function put(httpUrl: string, headers: Record<string, string>, length: number | null, send = length ?? 0) {
  const req = request(`${httpUrl}${UPLOAD_PATH}`, {
    method: 'PUT', headers: { expect: '100-continue', ...(length === null ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(length) }), ...headers },
  });
  let continued = false;
  const done = new Promise<Put>((resolve, reject) => {
    req.on('continue', () => {
      continued = true;
      req.write(Buffer.alloc(send));
      if (send === length) req.end();
    });
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, continued }));
    });
    req.on('error', reject);
  });
  if (length === null) req.flushHeaders();
  return { done, req, continued: () => continued };
}

/**
 * Sessions that each take an upload slot, send half of a 3 MB body and go quiet. Resolves as soon as
 * every half is written (the slots are held), with a promise per upload of how and when it ended;
 * the promise is wrapped so that awaiting the stall does not wait for the cut-off.
 */
async function stallUploads(server: RunningServer, tokens: Record<string, string>, names: string[]) {
  return Promise.all(names.map(async (name) => {
    const s = await session(server.wsUrl, tokens[name]);
    const upload = put(server.httpUrl, { authorization: `Bearer ${s.ticket}` }, 3_000_000, 1_500_000);
    const ended = upload.done.then((r) => ({ end: `answered ${r.status}`, at: Date.now() }), (err: Error) => ({ end: err.message, at: Date.now() }));
    await waitFor(() => (upload.continued() && upload.req.writableLength === 0) || undefined, 'half the body written');
    return { ended };
  }));
}

/** When and how each stalled upload ended. */
const ends = (stalled: Awaited<ReturnType<typeof stallUploads>>) => Promise.all(stalled.map((s) => s.ended));

test('an upload needs its session\'s ticket and a Content-Length within the cap, checked before the body; the WebSocket takes control messages only', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1 }, ['a']);
  try {
    const cap = server.federation.config.maxMessageBytes;
    const s = await session(server.wsUrl, tokens.a);
    const bearer = { authorization: `Bearer ${s.ticket}` };

    const noTicket = await put(server.httpUrl, {}, 1000).done;
    assert.deepEqual([noTicket.status, noTicket.continued], [401, false]);
    const wrongTicket = await put(server.httpUrl, { authorization: `Bearer ${'x'.repeat(43)}` }, 1000).done;
    assert.deepEqual([wrongTicket.status, wrongTicket.continued], [401, false]);
    const tooBig = await put(server.httpUrl, bearer, cap + 1).done;
    assert.deepEqual([tooBig.status, tooBig.continued], [413, false], 'refused from Content-Length, not one body byte asked for');
    assert.match(tooBig.body, new RegExp(`exceeds the ${cap}-byte cap`));
    const chunked = await put(server.httpUrl, bearer, null).done;
    assert.deepEqual([chunked.status, chunked.continued], [411, false]);

    // An upload the server takes in reaches the federation's checks: garbage gets the protocol error.
    const garbage = await put(server.httpUrl, bearer, 64).done;
    assert.deepEqual([garbage.status, garbage.continued], [200, true]);
    await waitFor(() => s.received.some((m) => m.text?.includes('does not start with the FedSeg prelude')), 'the frame error');

    s.ws.send(Buffer.alloc(1024), { binary: true });
    await waitFor(() => s.received.some((m) => m.text?.includes(`uploaded by HTTP PUT to ${UPLOAD_PATH}`)), 'the binary-frame error');
    s.ws.send(Buffer.alloc(SITE_MESSAGE_MAX_BYTES + 1), { binary: true });
    assert.equal(await s.closed, 1009, 'a WebSocket message past the control-message cap closes the session');

    const afterClose = await put(server.httpUrl, bearer, 1000).done;
    assert.equal(afterClose.status, 401, 'the ticket ends with its session');
  } finally {
    await server.close();
  }
});

test('uploads beyond the slots wait, and a stalled upload is cut off to free its slot', async () => {
  // 350,916 parameters (1.4 MB updates); a 64 MiB frame cap leaves room for 2 slots in the 128 MiB
  // for uploads. Long heartbeats, so only the stall rule can free the stalled slots.
  const model = { baseFilters: 8, depth: 4, inputShape: [16, 16, 16] as [number, number, number] };
  const config = makeModelConfig(model);
  const { server, tokens } = await startTestServer(dir(), {
    rounds: 1, minSites: 2, model, maxMessageBytes: 64 * 1024 * 1024, heartbeatS: 30, approvalDeadlineS: 3, trainingDeadlineS: 120,
  }, ['h1', 'h2', 'stall1', 'stall2'], { h1: 4, h2: 4 });
  try {
    const honest = ['h1', 'h2'].map((s) => new ScriptedSite(server.wsUrl, tokens[s]).start());
    const joined = await Promise.all(honest.map(async (site) => {
      const a = await site.announce(1);
      site.client.send({ type: 'approve', round: 1, attempt: a.attempt });
      return { attempt: a.attempt, ...(await site.trainWeights(1)) };
    }));
    const stalled = await stallUploads(server, tokens, ['stall1', 'stall2']);
    await new Promise((r) => setTimeout(r, 300));
    const verdicts = honest.map((site, k) => {
      const count = site.messages.length;
      site.sendUpdate(1, joined[k].attempt, shifted(joined[k].weights, 0.1), { architectureHash: architectureHash(config) }, config);
      return site.verdict(1, count);
    });
    for (const v of await Promise.all(verdicts)) assert.equal(v.type, 'update-accepted');
    const acceptedAt = Date.now();
    const cut = await ends(stalled);
    assert.deepEqual(cut.map((c) => c.end), ['socket hang up', 'socket hang up'], 'the stalled uploads are cut off');
    assert.ok(acceptedAt >= Math.min(...cut.map((c) => c.at)), 'the honest uploads waited until a stalled one was cut off');
    assert.equal(await server.federation.done, 'finished');
    for (const h of honest) h.stop();
  } finally {
    await server.close();
  }
});

test('a site upload refused with 503 while every slot is busy is retried after Retry-After and lands', async () => {
  // Two 64 MiB slots, both held by stalled uploads; a queued upload is refused after 200 ms, long
  // before the stalled ones are cut off at 2.5 s, so the site's upload can only land by retrying.
  const model = { baseFilters: 8, depth: 4, inputShape: [16, 16, 16] as [number, number, number] };
  const config = makeModelConfig(model);
  const { server, tokens } = await startTestServer(dir(), {
    rounds: 1, minSites: 1, model, maxMessageBytes: 64 * 1024 * 1024, heartbeatS: 30, approvalDeadlineS: 1, trainingDeadlineS: 120,
  }, ['h1', 'stall1', 'stall2'], { h1: 4 }, { uploadTimeouts: { queueMs: 200, stallMs: 2500 } });
  try {
    const site = new ScriptedSite(server.wsUrl, tokens.h1).start();
    const errors: string[] = [];
    site.client.on('protocol-error', (e: string) => errors.push(e));
    const a = await site.announce(1);
    site.client.send({ type: 'approve', round: 1, attempt: a.attempt });
    const { weights } = await site.trainWeights(1);
    const stalled = await stallUploads(server, tokens, ['stall1', 'stall2']);
    const count = site.messages.length;
    site.sendUpdate(1, a.attempt, shifted(weights, 0.1), { architectureHash: architectureHash(config) }, config);
    const verdict = await site.verdict(1, count);
    const acceptedAt = Date.now();
    assert.equal(verdict.type, 'update-accepted');
    assert.ok(acceptedAt >= Math.min(...(await ends(stalled)).map((c) => c.at)), 'the upload landed only after a stalled one was cut off, so through a retry');
    assert.deepEqual(errors, [], 'the 503s were retried, not reported');
    assert.equal(await server.federation.done, 'finished');
    site.stop();
  } finally {
    await server.close();
  }
});
