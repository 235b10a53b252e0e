/**
 * The server aggregates from its on-disk spool, one update (or one block) at a time (issue 16):
 * the aggregate does not depend on arrival order, a refused update never reaches it, an abandoned
 * round leaves nothing behind, and the frame cap follows the model, refusing an oversized frame
 * from its header, before any of it is buffered.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { aggregateInMemory, FedAvg, type ClientUpdate } from '../../core/federation/strategies/index.js';
import { l2Distance, type TensorList } from '../../core/federation/tensors.js';
import { makeModelConfig } from '../../core/model/config.js';
import { parameterCount } from '../../core/model/parameters.js';
import { architectureHash, decodeModel } from '../../core/weights/index.js';
import { parseFederationConfig } from '../../server/config.js';
import type { RunningServer } from '../../server/index.js';
import { api, rawSocket, ScriptedSite, shifted, startTestServer, tempDir, waitFor } from './helpers.js';

const tmp = tempDir('streaming');
after(() => tmp.cleanup());
let n = 0;
const dir = () => `${tmp.dir}/${++n}`;

async function globalOf(server: RunningServer, round: number): Promise<TensorList> {
  const { status, body } = await api<Uint8Array>(server, `/api/rounds/${round}/model`);
  assert.equal(status, 200);
  return decodeModel(body).tensors;
}

/** Approves `round` and returns the weights to train on and the attempt. */
async function join_(site: ScriptedSite, round: number) {
  const a = await site.announce(round);
  site.client.send({ type: 'approve', round, attempt: a.attempt });
  const { weights } = await site.trainWeights(round);
  return { weights, attempt: a.attempt };
}

async function send(site: ScriptedSite, round: number, attempt: number, weights: TensorList) {
  const count = site.messages.length;
  site.sendUpdate(round, attempt, weights);
  return site.verdict(round, count);
}

function bits(weights: TensorList): number[][] {
  return weights.map((t) => [...new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)]);
}

/**
 * At one coordinate where the global model is 0 (a bias), sites a, b, c send 1, 2^-60 and -1.
 * Summed in float64 as a, c, b this gives 2^-60 / 3; as a, b, c the tiny value is absorbed by
 * 1 + 2^-60 = 1 and the mean is exactly 0.
 */
function orderSensitive(global: TensorList): { at: [number, number]; updates: Record<string, TensorList> } {
  const tensor = global.findIndex((t) => t.shape.length === 1 && t.data.every((v) => v === 0));
  assert.ok(tensor >= 0, 'the tiny model has a zero bias');
  const withValue = (v: number) => global.map((t, k) => {
    const data = new Float32Array(t.data);
    if (k === tensor) data[0] = v;
    return { ...t, data };
  });
  return { at: [tensor, 0], updates: { a: withValue(1), b: withValue(2 ** -60), c: withValue(-1) } };
}

test('the aggregate is bit-identical whatever order the updates arrive in', async () => {
  const hashes: string[] = [];
  const models: TensorList[] = [];
  for (const arrival of [['a', 'b', 'c'], ['a', 'c', 'b']]) {
    const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 3 }, ['a', 'b', 'c'], { a: 4, b: 4, c: 4 });
    try {
      const sites = Object.fromEntries(['a', 'b', 'c'].map((s) => [s, new ScriptedSite(server.wsUrl, tokens[s]).start()]));
      const joined = await Promise.all(['a', 'b', 'c'].map((s) => join_(sites[s], 1)));
      const { updates } = orderSensitive(joined[0].weights);
      assert.ok(l2Distance(joined[0].weights) * 5 > 1, 'the norm ceiling does not clip these updates');
      const completed = new Promise<string>((resolve) => server.federation.once('round-completed', (_r, _s, hash) => resolve(hash)));
      for (const s of arrival) assert.equal((await send(sites[s], 1, joined[0].attempt, updates[s])).type, 'update-accepted');
      hashes.push(await completed);
      models.push(await globalOf(server, 1));
      for (const s of Object.values(sites)) s.stop();
    } finally {
      await server.close();
    }
  }
  assert.equal(hashes[0], hashes[1]);
  assert.deepEqual(bits(models[0]), bits(models[1]));
  // The test has teeth: summing in arrival order would have given two different models.
  const global = models[0].map((t) => ({ ...t, data: new Float32Array(t.data.length) }));
  const { at: [k, i], updates } = orderSensitive(global);
  const inOrder = (order: string[]) => aggregateInMemory(new FedAvg(), 1, order.map((s): ClientUpdate => ({ site: s, numCases: 4, weights: updates[s] })), global)[k].data[i];
  assert.equal(inOrder(['a', 'b', 'c']), 0);
  assert.equal(inOrder(['a', 'c', 'b']), Math.fround(2 ** -60 / 3));
  assert.equal(models[0][k].data[i], 0, 'the server sums in site order');
});

test('a refused update is never spooled and never reaches the sum', async () => {
  const { server, tokens, dbFile } = await startTestServer(dir(), { rounds: 1, minSites: 2 }, ['a', 'b', 'nan'], { a: 4, b: 4, nan: 4 });
  try {
    const sites = Object.fromEntries(['a', 'b', 'nan'].map((s) => [s, new ScriptedSite(server.wsUrl, tokens[s]).start()]));
    const joined = Object.fromEntries(await Promise.all(['a', 'b', 'nan'].map(async (s) => [s, await join_(sites[s], 1)] as const)));
    const { weights: global, attempt } = joined.a;
    const bad = global.map((t, k) => ({ ...t, data: k === 0 ? new Float32Array(t.data.length).fill(Number.NaN) : t.data }));
    assert.equal((await send(sites.a, 1, attempt, shifted(global, 0.1))).type, 'update-accepted');
    const refused = await send(sites.nan, 1, attempt, bad);
    assert.equal(refused.type, 'update-rejected');
    const roundDir = join(dbFile, '..', 'spool', `round-1-attempt-${attempt}`);
    assert.deepEqual(readdirSync(roundDir), ['a.f32'], 'only the accepted update is on disk');
    assert.equal((await send(sites.b, 1, attempt, shifted(global, 0.3))).type, 'update-accepted');
    assert.equal(await server.federation.done, 'finished');
    const expected = aggregateInMemory(new FedAvg(), 1, [
      { site: 'a', numCases: 4, weights: shifted(global, 0.1) }, { site: 'b', numCases: 4, weights: shifted(global, 0.3) },
    ], global);
    assert.deepEqual(bits(await globalOf(server, 1)), bits(expected));
    assert.deepEqual(readdirSync(join(dbFile, '..', 'spool')), [], 'the round\'s files are gone once it completes');
    for (const s of Object.values(sites)) s.stop();
  } finally {
    await server.close();
  }
});

test('an abandoned round discards its spooled updates; the next attempt aggregates only its own', async () => {
  const { server, tokens, dbFile } = await startTestServer(dir(), { rounds: 1, minSites: 2, trainingDeadlineS: 1.5 }, ['a', 'b'], { a: 4, b: 4 });
  try {
    const a = new ScriptedSite(server.wsUrl, tokens.a).start();
    const b = new ScriptedSite(server.wsUrl, tokens.b).start();
    const abandoned = new Promise<void>((resolve) => server.federation.once('round-abandoned', () => resolve()));
    const [first] = await Promise.all([join_(a, 1), join_(b, 1)]);
    const spool = join(dbFile, '..', 'spool');
    assert.equal((await send(a, 1, first.attempt, shifted(first.weights, 5))).type, 'update-accepted');
    assert.deepEqual(readdirSync(join(spool, `round-1-attempt-${first.attempt}`)), ['a.f32']);
    await abandoned;
    await waitFor(() => !existsSync(join(spool, `round-1-attempt-${first.attempt}`)), 'the abandoned attempt\'s files to be removed');
    // Attempt 2: both send; attempt 1's update (shift 5) must not count.
    await waitFor(() => a.messages.filter((m) => m.type === 'announce').length >= 2, 'second attempt');
    const announce = a.messages.filter((m) => m.type === 'announce').at(-1)!;
    const attempt = announce.type === 'announce' ? announce.attempt : 0;
    for (const s of [a, b]) s.client.send({ type: 'approve', round: 1, attempt });
    // Same global model as attempt 1, so each is told its hash rather than sent it again.
    await Promise.all([a, b].map((s) => waitFor(() => s.messages.some((m) => m.type === 'train-cached'), 'weights of attempt 2')));
    assert.equal((await send(a, 1, attempt, shifted(first.weights, 0.1))).type, 'update-accepted');
    assert.equal((await send(b, 1, attempt, shifted(first.weights, 0.3))).type, 'update-accepted');
    assert.equal(await server.federation.done, 'finished');
    const expected = aggregateInMemory(new FedAvg(), 1, [
      { site: 'a', numCases: 4, weights: shifted(first.weights, 0.1) }, { site: 'b', numCases: 4, weights: shifted(first.weights, 0.3) },
    ], first.weights);
    assert.deepEqual(bits(await globalOf(server, 1)), bits(expected));
    a.stop();
    b.stop();
  } finally {
    await server.close();
  }
});

test('the frame cap follows the model: 4 bytes per parameter plus 1 MiB; a cap too small to carry an update is refused', () => {
  for (const model of [{}, { baseFilters: 32 }, { baseFilters: 2, depth: 2, inputShape: [16, 16, 16] }]) {
    const config = parseFederationConfig({ model, rounds: 1 });
    assert.equal(config.maxMessageBytes, 4 * parameterCount(config.modelConfig) + 1024 * 1024);
  }
  const wide = parseFederationConfig({ model: { baseFilters: 32 }, rounds: 1 });
  assert.ok(wide.maxMessageBytes > 90e6, 'a 32-filter U-Net (~90 MB per update) fits, the old fixed 64 MiB did not');
  assert.throws(() => parseFederationConfig({ model: {}, rounds: 1, maxMessageBytes: 16 * 1024 * 1024 }), /maxMessageBytes .* cannot carry this model's updates/);
});

test('the frame cap follows the model and is sent in welcome; unauthenticated connections are cut off at 64 KiB', async () => {
  const { server, tokens } = await startTestServer(dir(), { rounds: 1 }, ['a']);
  try {
    const cap = server.federation.config.maxMessageBytes;
    const site = rawSocket(server.wsUrl);
    await site.opened;
    site.ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: tokens.a, cases: { train: 4, validation: 2 } }));
    await waitFor(() => site.received.some((m) => m.text?.includes('"welcome"')), 'welcome');
    assert.ok(site.received.some((m) => m.text?.includes(`"maxMessageBytes":${cap}`)), 'the welcome names the cap');
    site.ws.close();

    const stranger = rawSocket(server.wsUrl);
    await stranger.opened;
    stranger.ws.send(Buffer.alloc(512 * 1024), { binary: true });
    assert.equal(await stranger.closed, 1006, 'terminated after 64 KiB, not answered');
    assert.deepEqual(stranger.received, []);
  } finally {
    await server.close();
  }
});

test('a 32-filter U-Net federation (~90 MB per update) runs a round', async () => {
  const model = { baseFilters: 32, inputShape: [16, 16, 16] as [number, number, number] };
  const config = makeModelConfig(model);
  // Heartbeats and a deadline long enough for 90 MB frames on a busy test machine.
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 1, model, heartbeatS: 30, trainingDeadlineS: 300 }, ['wide'], { wide: 4 });
  try {
    const site = new ScriptedSite(server.wsUrl, tokens.wide).start();
    const { weights, attempt } = await join_(site, 1);
    assert.ok(4 * parameterCount(config) > 64 * 1024 * 1024, 'larger than the old fixed cap');
    const count = site.messages.length;
    site.sendUpdate(1, attempt, shifted(weights, 0.01), { architectureHash: architectureHash(config) }, config);
    const verdict = await site.verdict(1, count);
    assert.equal(verdict.type, 'update-accepted', JSON.stringify(verdict));
    assert.equal(await server.federation.done, 'finished');
    site.stop();
  } finally {
    await server.close();
  }
});
