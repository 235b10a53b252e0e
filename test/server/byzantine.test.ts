/**
 * One hostile site among honest ones, over real sockets on 127.0.0.1 (issue 10, D1 and D2): it
 * cannot buy weight with a made-up case count, cannot push the global model further than its
 * clipped, capped share, and cannot break the server optimiser's state.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { firstNonFinite, l2Distance, type TensorList } from '../../core/federation/tensors.js';
import { initialWeights } from '../../core/model/init.js';
import { decodeModel } from '../../core/weights/index.js';
import type { RunningServer } from '../../server/index.js';
import { api, ScriptedSite, shifted, shiftTrainer, startSite, startTestServer, tempDir, tinyConfig } from './helpers.js';

const tmp = tempDir('byzantine');
after(() => tmp.cleanup());
let n = 0;
const dir = () => `${tmp.dir}/${++n}`;
const HONEST = ['h1', 'h2', 'h3', 'h4'];

async function globalOf(server: RunningServer, round: number): Promise<TensorList> {
  const { status, body } = await api<Uint8Array>(server, `/api/rounds/${round}/model`);
  assert.equal(status, 200);
  return decodeModel(body).tensors;
}

/** Takes part in `round` and sends `make(weights)` with the given header overrides; returns the verdict. */
async function attack(site: ScriptedSite, round: number, make: (w: TensorList) => TensorList, numCases: number) {
  const a = await site.announce(round);
  site.client.send({ type: 'approve', round, attempt: a.attempt });
  const { weights } = await site.trainWeights(round);
  const count = site.messages.length;
  site.sendUpdate(round, a.attempt, make(weights), { numCases });
  return site.verdict(round, count);
}

function maxAbsDiff(a: TensorList, b: TensorList): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) for (let i = 0; i < a[k].data.length; i++) m = Math.max(m, Math.abs(a[k].data[i] - b[k].data[i]));
  return m;
}

test('D1: a site cannot claim more cases than the operator registered, and an unregistered one weighs at most the median', async () => {
  const cases = Object.fromEntries([...HONEST, 'liar'].map((s) => [s, 4]));
  const { server, tokens } = await startTestServer(dir(), { rounds: 1, minSites: 4 }, [...HONEST, 'liar', 'legacy'], cases);
  try {
    const honest = HONEST.map((s) => startSite(server, tokens[s], shiftTrainer(0.1, { train: 4, validation: 1 })));
    // Both declare 10^12 training cases in hello, and claim them in the update.
    const liar = new ScriptedSite(server.wsUrl, tokens.liar, { train: 1e12, validation: 1 }).start();
    const legacy = new ScriptedSite(server.wsUrl, tokens.legacy, { train: 1e12, validation: 1 }).start();
    const [liarVerdict, legacyVerdict] = await Promise.all([
      attack(liar, 1, (w) => shifted(w, 0.25), 1e12),
      attack(legacy, 1, (w) => shifted(w, 0.25), 1e12),
    ]);
    assert.equal(liarVerdict.type, 'update-rejected');
    assert.match(liarVerdict.type === 'update-rejected' ? liarVerdict.reason : '', /exceeds the 4 training cases registered for the site/);
    assert.equal(legacyVerdict.type, 'update-accepted', 'a site without a registered count takes part');
    assert.equal(await server.federation.done, 'finished');
    // legacy weighs like the median site (4 cases): (16 * 0.1 + 4 * 0.25) / 20 = 0.13, not 0.25.
    const init = initialWeights(tinyConfig, 7);
    assert.ok(maxAbsDiff(await globalOf(server, 1), shifted(init, 0.13)) < 1e-5);
    const { body: sites } = await api<{ name: string; registeredCases: number | null }[]>(server, '/api/sites');
    assert.deepEqual(sites.map((s) => [s.name, s.registeredCases]), [['h1', 4], ['h2', 4], ['h3', 4], ['h4', 4], ['legacy', null], ['liar', 4]]);
    liar.stop();
    legacy.stop();
    await Promise.all(honest.map((h) => h.site.done));
  } finally {
    await server.close();
  }
});

test('D2: an update with every weight at 1e30 is clipped; the global model moves by at most its share of the bound and the federation finishes', async () => {
  const cases = Object.fromEntries([...HONEST, 'evil'].map((s) => [s, 4]));
  const { server, tokens } = await startTestServer(dir(), { rounds: 2, minSites: 5 }, [...HONEST, 'evil'], cases);
  try {
    const honest = HONEST.map((s) => startSite(server, tokens[s], shiftTrainer(0.1, { train: 4, validation: 1 })));
    const evil = new ScriptedSite(server.wsUrl, tokens.evil).start();
    const huge = (w: TensorList) => w.map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(1e30) }));
    for (const round of [1, 2]) assert.equal((await attack(evil, round, huge, 4)).type, 'update-accepted');
    assert.equal(await server.federation.done, 'finished');

    let previous = initialWeights(tinyConfig, 7);
    for (const round of [1, 2]) {
      const global = await globalOf(server, round);
      // Honest sites all moved by 0.1; the hostile site's weight share is 4/20 and its update is
      // clipped to B = 3 * median norm = 3 * ||0.1||.
      const honestNorm = l2Distance(shifted(previous, 0.1), previous);
      const moved = l2Distance(global, shifted(previous, 0.1));
      assert.ok(moved <= (4 / 20) * 3 * honestNorm * (1 + 1e-4), `round ${round}: moved ${moved} beyond ${(4 / 20) * 3 * honestNorm}`);
      previous = global;
    }
    const { body: log } = await api<{ action: string; detail: { clipped?: string[] } }[]>(server, '/api/audit');
    assert.deepEqual(log.filter((e) => e.action === 'round-completed').map((e) => e.detail.clipped), [['evil'], ['evil']]);
    const { body: sites } = await api<{ name: string; flag: { clipped: number } | null }[]>(server, '/api/sites');
    assert.deepEqual(sites.filter((s) => s.flag).map((s) => [s.name, s.flag!.clipped]), [['evil', 2]]);
    const { body: page } = await api<string>(server, '/');
    assert.match(page, /⚠ 2 clipped, 0 rejected of last 2 updates/);
    evil.stop();
    await Promise.all(honest.map((h) => h.site.done));
  } finally {
    await server.close();
  }
});

test('D2: under FedAdam a 1e21 update leaves the optimiser state finite; the global model keeps moving and no checkpoint holds Infinity', async () => {
  const d = dir();
  const { server, tokens } = await startTestServer(d, { rounds: 3, minSites: 2, strategy: { name: 'fedadam' } }, ['h1', 'evil'], { h1: 4, evil: 4 });
  try {
    const h1 = startSite(server, tokens.h1, shiftTrainer(0.1, { train: 4, validation: 1 }));
    const evil = new ScriptedSite(server.wsUrl, tokens.evil).start();
    assert.equal((await attack(evil, 1, (w) => shifted(w, 1e21), 4)).type, 'update-accepted');
    for (const round of [2, 3]) assert.equal((await attack(evil, round, (w) => shifted(w, 0.1), 4)).type, 'update-accepted');
    assert.equal(await server.federation.done, 'finished');
    const [g1, g2, g3] = [await globalOf(server, 1), await globalOf(server, 2), await globalOf(server, 3)];
    assert.ok(l2Distance(g3, g2) > 0 && l2Distance(g2, g1) > 0, 'the global model still moves after the attack');
    const checkpoints = join(d, 'checkpoints');
    const stateFiles = readdirSync(checkpoints).filter((f) => f.includes('.state'));
    assert.ok(stateFiles.length >= 2);
    for (const f of stateFiles) assert.equal(firstNonFinite(decodeModel(readFileSync(join(checkpoints, f))).tensors), null, `${f} is finite`);
    evil.stop();
    await h1.site.done;
  } finally {
    await server.close();
  }
});
