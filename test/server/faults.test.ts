/**
 * Faults and bad input over real sockets on 127.0.0.1. In every case: the global model is unchanged
 * by anything rejected, the audit log says what happened, and the other sites carry on.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { encodeFrame } from '../../core/federation/protocol.js';
import { initialWeights } from '../../core/model/init.js';
import { makeModelConfig } from '../../core/model/config.js';
import { architectureHash, decodeModel, encodeModel } from '../../core/weights/index.js';
import type { RunningServer } from '../../server/index.js';
import { api, rawSocket, ScriptedSite, shifted, shiftTrainer, startSite, startTestServer, tempDir, tinyConfig, tinyHash, waitFor } from './helpers.js';

const tmp = tempDir('faults');
after(() => tmp.cleanup());
let n = 0;
const dir = () => `${tmp.dir}/${++n}`;

async function audit(server: RunningServer): Promise<{ actor: string; action: string; round: number | null; detail: Record<string, unknown> }[]> {
  return (await api<never[]>(server, '/api/audit')).body;
}

async function globalOf(server: RunningServer, round: number) {
  const { status, body } = await api<Uint8Array>(server, `/api/rounds/${round}/model`);
  assert.equal(status, 200);
  return decodeModel(body).tensors;
}

function assertShifted(actual: ReturnType<typeof initialWeights>, base: ReturnType<typeof initialWeights>, shift: number): void {
  for (let k = 0; k < base.length; k++) {
    for (let i = 0; i < base[k].data.length; i += 5) {
      assert.ok(Math.abs(actual[k].data[i] - (base[k].data[i] + shift)) < 1e-5, `tensor ${base[k].name}[${i}] should be shifted by ${shift}`);
    }
  }
}

test('wrong token, no token, binary before hello and an oversized frame are refused; a valid site still completes the round', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 1, maxMessageBytes: 128 * 1024, approvalDeadlineS: 2 }, ['good', 'noisy']);
  try {
    const hello = (token?: string) => JSON.stringify({ type: 'hello', protocol: 1, ...(token ? { token } : {}), cases: { train: 3, validation: 1 } });
    const wrong = rawSocket(server.wsUrl);
    await wrong.opened;
    wrong.ws.send(hello('not-a-registered-token'));
    assert.equal(await wrong.closed, 4401);
    assert.match(wrong.received[0].text!, /auth-failed/);

    const missing = rawSocket(server.wsUrl);
    await missing.opened;
    missing.ws.send(hello());
    assert.equal(await missing.closed, 4401);

    const early = rawSocket(server.wsUrl);
    await early.opened;
    early.ws.send(Buffer.alloc(64));
    assert.equal(await early.closed, 4401);
    // No connection that failed authentication received a single binary (model) byte.
    for (const s of [wrong, missing, early]) assert.ok(s.received.every((m) => m.binary === undefined));

    // An authenticated site sending junk gets an error and stays connected.
    const noisy = new ScriptedSite(server.wsUrl, tokens.noisy).start();
    await waitFor(() => noisy.client.connected, 'noisy site to authenticate');
    const ws = (noisy.client as unknown as { ws: WebSocket }).ws;
    ws.send('this is not JSON');
    ws.send(JSON.stringify({ type: 'approve', round: 'one' }));
    await waitFor(() => noisy.messages.filter((m) => m.type === 'error').length === 2, 'two protocol errors');
    assert.ok(noisy.client.connected);

    // Oversized frame: the server's maxPayload closes that connection (1009).
    const closedBig = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.alloc(200 * 1024));
    assert.equal(await closedBig, 1009);
    noisy.stop();

    const good = startSite(server, tokens.good, shiftTrainer(0.25));
    assert.equal(await server.federation.done, 'finished');
    assertShifted(await globalOf(server, 1), initialWeights(tinyConfig, 7), 0.25);
    await good.site.done;

    const log = await audit(server);
    const actions = log.map((e) => e.action);
    assert.equal(actions.filter((a) => a === 'auth-failed').length, 3);
    assert.equal(actions.filter((a) => a === 'protocol-error').length, 2);
    assert.ok(actions.includes('oversized-frame'));
    assert.ok(log.some((e) => e.action === 'auth-failed' && /unknown or revoked site token/.test(String(e.detail.reason))));
  } finally {
    await server.close();
  }
});

test('updates with wrong shapes, NaN, Inf, a wrong architecture hash, bad case counts, duplicates and an old round are rejected and never touch the global model', async () => {
  const bad = ['shapes', 'nan', 'inf', 'archhash', 'negative', 'inflated', 'fraction'];
  const { server, tokens } = await startTestServer(dir(), { rounds: 2, minSites: 2 }, ['h1', 'h2', 'dup', ...bad]);
  try {
    const h1 = startSite(server, tokens.h1, shiftTrainer(0.1, { train: 2, validation: 1 }));
    const h2 = startSite(server, tokens.h2, shiftTrainer(0.3, { train: 2, validation: 1 }));
    const other = makeModelConfig({ baseFilters: 3, depth: 2, inputShape: [16, 16, 16] });
    const scripted = Object.fromEntries(bad.map((b) => [b, new ScriptedSite(server.wsUrl, tokens[b]).start()]));
    const dup = new ScriptedSite(server.wsUrl, tokens.dup).start();

    const misbehave = async (kind: string, site: ScriptedSite) => {
      const a = await site.announce(1);
      site.client.send({ type: 'approve', round: 1, attempt: a.attempt });
      const { weights } = await site.trainWeights(1);
      const count = site.messages.length;
      switch (kind) {
        case 'shapes': site.sendUpdate(1, a.attempt, initialWeights(other, 1), {}, other); break;
        case 'nan': { const w = shifted(weights, 0.5); w[0].data[3] = NaN; site.sendUpdate(1, a.attempt, w); break; }
        case 'inf': { const w = shifted(weights, 0.5); w[1].data[0] = -Infinity; site.sendUpdate(1, a.attempt, w); break; }
        case 'archhash': site.sendUpdate(1, a.attempt, shifted(weights, 0.5), { architectureHash: architectureHash(other) }); break;
        case 'negative': site.sendUpdate(1, a.attempt, shifted(weights, 0.5), { numCases: -3 }); break;
        case 'inflated': site.sendUpdate(1, a.attempt, shifted(weights, 0.5), { numCases: 1000 }); break;
        case 'fraction': site.sendUpdate(1, a.attempt, shifted(weights, 0.5), { numCases: 2.5 }); break;
      }
      const verdict = await site.verdict(1, count);
      assert.equal(verdict.type, 'update-rejected', `${kind} must be rejected`);
      await site.until(() => site.messages.find((m) => m.type === 'left-out' && m.round === 1), `${kind} left out`);
      const a2 = await site.announce(2);
      if (kind !== 'nan') {
        site.client.send({ type: 'decline', round: 2, attempt: a2.attempt, reason: 'test' });
        return verdict.type === 'update-rejected' ? verdict.reason : '';
      }
      // This site takes part in round 2 but first sends a late update for round 1.
      site.client.send({ type: 'approve', round: 2, attempt: a2.attempt });
      const round2 = await site.trainWeights(2);
      let count2 = site.messages.length;
      site.sendUpdate(1, a.attempt, shifted(round2.weights, 9));
      const late = await site.verdict(1, count2);
      assert.equal(late.type, 'update-rejected');
      staleReason = late.type === 'update-rejected' ? late.reason : '';
      count2 = site.messages.length;
      site.sendUpdate(2, a2.attempt, shifted(round2.weights, 0.2));
      assert.equal((await site.verdict(2, count2)).type, 'update-accepted', 'a late update does not cost the site its place in the current round');
      return verdict.type === 'update-rejected' ? verdict.reason : '';
    };

    let staleReason = '';
    const duplicateAndStale = async () => {
      const a = await dup.announce(1);
      dup.client.send({ type: 'approve', round: 1, attempt: a.attempt });
      const { weights } = await dup.trainWeights(1);
      let count = dup.messages.length;
      dup.sendUpdate(1, a.attempt, shifted(weights, 0.2));
      assert.equal((await dup.verdict(1, count)).type, 'update-accepted');
      count = dup.messages.length;
      dup.sendUpdate(1, a.attempt, shifted(weights, 9));
      const second = await dup.verdict(1, count);
      assert.equal(second.type, 'update-rejected');
      const a2 = await dup.announce(2);
      dup.client.send({ type: 'approve', round: 2, attempt: a2.attempt });
      const round2 = await dup.trainWeights(2);
      count = dup.messages.length;
      dup.sendUpdate(1, a.attempt, shifted(round2.weights, 9));
      const again = await dup.verdict(1, count);
      assert.equal(again.type, 'update-rejected');
      count = dup.messages.length;
      dup.sendUpdate(2, a2.attempt, shifted(round2.weights, 0.2));
      assert.equal((await dup.verdict(2, count)).type, 'update-accepted');
      return [second.type === 'update-rejected' ? second.reason : '', again.type === 'update-rejected' ? again.reason : ''];
    };

    const [reasons, [dupReason, dupAfterRoundReason]] = await Promise.all([Promise.all(bad.map((b) => misbehave(b, scripted[b]))), duplicateAndStale()]);
    assert.equal(await server.federation.done, 'finished');
    assert.match(reasons[0], /architecture mismatch/);
    assert.match(reasons[1], /NaN or Infinity/);
    assert.match(reasons[2], /NaN or Infinity/);
    assert.match(reasons[3], /architecture hash/);
    assert.match(reasons[4], /positive integer/);
    assert.match(reasons[5], /exceeds the 4 training cases/);
    assert.match(reasons[6], /positive integer/);
    assert.match(dupReason, /duplicate/);
    assert.match(dupAfterRoundReason, /duplicate/);
    assert.match(staleReason, /update is for round 1, but round 2 is collecting/);

    // Round 1 = (2 * 0.1 + 2 * 0.3 + 4 * 0.2) / 8 = 0.2 on every weight; round 2 (with the nan site
    // back and honest) = (2 * 0.1 + 2 * 0.3 + 4 * 0.2 + 4 * 0.2) / 12 = 0.2 again.
    const init = initialWeights(tinyConfig, 7);
    assertShifted(await globalOf(server, 1), init, 0.2);
    assertShifted(await globalOf(server, 2), init, 0.4);
    const log = await audit(server);
    const rejected = log.filter((e) => e.action === 'update-rejected');
    assert.equal(rejected.length, bad.length + 3);
    assert.ok(rejected.every((e) => typeof e.detail.reason === 'string' && e.detail.reason.length > 0));
    const completed = log.filter((e) => e.action === 'round-completed');
    assert.deepEqual(completed.map((e) => (e.detail.sites as string[]).sort()), [['dup', 'h1', 'h2'], ['dup', 'h1', 'h2', 'nan']]);
    for (const s of [...Object.values(scripted), dup]) s.stop();
    await Promise.all([h1.site.done, h2.site.done]);
  } finally {
    await server.close();
  }
});

test('a declining site and one that disconnects mid-training are left out; with fewer than minSites updates the round is abandoned and retried', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 2, trainingDeadlineS: 2, approvalDeadlineS: 5 }, ['h1', 'h2', 'decliner', 'quitter']);
  try {
    const h1 = startSite(server, tokens.h1, shiftTrainer(0.1, { train: 2, validation: 1 }));
    const decliner = startSite(server, tokens.decliner, shiftTrainer(5), false);
    const quitter = new ScriptedSite(server.wsUrl, tokens.quitter).start();
    const a = await quitter.announce(1);
    quitter.client.send({ type: 'approve', round: 1, attempt: a.attempt });
    await quitter.trainWeights(1);
    quitter.stop(); // gone mid-training
    const abandoned = await new Promise<string>((resolve) => server.federation.once('round-abandoned', (_r, _a, reason) => resolve(reason)));
    assert.match(abandoned, /1 valid update\(s\) arrived, 2 needed/);
    assert.equal(server.federation.completedRounds, 0, 'an abandoned round is not aggregated');

    const h2 = startSite(server, tokens.h2, shiftTrainer(0.3, { train: 2, validation: 1 }), (round) => round === 1);
    assert.equal(await server.federation.done, 'finished');
    assertShifted(await globalOf(server, 1), initialWeights(tinyConfig, 7), 0.2);

    const { body: rounds } = await api<{ round: number; attempt: number; status: string }[]>(server, '/api/rounds');
    assert.deepEqual(rounds.filter((r) => r.round === 1).map((r) => [r.attempt, r.status]), [[1, 'abandoned'], [2, 'completed']]);
    const log = await audit(server);
    assert.ok(log.some((e) => e.action === 'approval-declined' && e.actor === 'decliner'));
    assert.ok(log.some((e) => e.action === 'site-disconnected' && e.actor === 'quitter'));
    assert.ok(log.some((e) => e.action === 'left-out' && e.detail.site === 'quitter'));
    assert.ok(log.some((e) => e.action === 'round-abandoned' && e.round === 1));
    assert.ok(decliner.events.some((e) => e.type === 'left-out' && /declined/.test(e.reason)));
    assert.ok(h1.events.some((e) => e.type === 'round-result' && e.status === 'abandoned'));
    await Promise.all([h1.site.done, h2.site.done, decliner.site.done]);
  } finally {
    await server.close();
  }
});

test('an upload that is not a FedSeg update, or a binary WebSocket message, is answered with an error and the site stays in the round', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 1 }, ['s']);
  try {
    const s = new ScriptedSite(server.wsUrl, tokens.s).start();
    const a = await s.announce(1);
    s.client.send({ type: 'approve', round: 1, attempt: a.attempt });
    const { weights } = await s.trainWeights(1);
    const errors = (n: number) => s.until(() => s.messages.filter((m) => m.type === 'error').length === n || undefined, `${n} error(s)`);
    // One upload per session at a time: each is answered before the next.
    void s.client.upload(Buffer.from('FSGW garbage that is not a frame'));
    await errors(1);
    void s.client.upload(encodeFrame({ kind: 'global', purpose: 'train', round: 1, architectureHash: tinyHash, sha256: '0'.repeat(64) }, encodeModel(tinyConfig, weights)));
    await errors(2);
    (s.client as unknown as { ws: WebSocket }).ws.send(Buffer.alloc(64));
    await errors(3);
    s.sendUpdate(1, a.attempt, shifted(weights, 0.5));
    assert.equal(await server.federation.done, 'finished');
    assertShifted(await globalOf(server, 1), initialWeights(tinyConfig, 7), 0.5);
    s.stop();
  } finally {
    await server.close();
  }
});

test('a site whose training fails withdraws at once: the round completes with the others long before its training deadline, and no file name leaves the site', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 1, trainingDeadlineS: 600, approvalDeadlineS: 5 }, ['h1', 'broken']);
  try {
    const started = Date.now();
    const h1 = startSite(server, tokens.h1, shiftTrainer(0.1, { train: 2, validation: 1 }));
    const failing = shiftTrainer(0);
    const broken = startSite(server, tokens.broken, { ...failing, train: async () => { throw new Error('cannot read /data/patient-0042/flair.nii.gz'); } });
    assert.equal(await server.federation.done, 'finished');
    assert.ok(Date.now() - started < 60_000, 'the round did not wait for the 600 s training deadline');
    assertShifted(await globalOf(server, 1), initialWeights(tinyConfig, 7), 0.1);
    const left = (await audit(server)).find((e) => e.action === 'left-out' && e.detail.site === 'broken');
    assert.ok(left, 'the withdrawal is audited');
    assert.doesNotMatch(JSON.stringify(left), /patient|nii/);
    assert.ok(broken.events.some((e) => e.type === 'left-out' && /withdrawn/.test(e.reason)));
    assert.ok(broken.events.some((e) => e.type === 'error' && /patient-0042/.test(e.message)), 'the site itself still shows the real error');
    await Promise.all([h1.site.done, broken.site.done]);
  } finally {
    await server.close();
  }
});
