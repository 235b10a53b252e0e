import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { initialWeights } from '../../core/model/init.js';
import { decodeModel } from '../../core/weights/index.js';
import { startServer } from '../../server/index.js';
import { ADMIN, api, federationConfig, startSite, startTestServer, shiftTrainer, tempDir, tinyConfig } from './helpers.js';

const tmp = tempDir('fed');
after(() => tmp.cleanup());

test('three sites run two FedAvg rounds over real sockets; the global model is the case-weighted mean', async () => {
  // Registered counts: FedAvg weighs each site by its n_k (an unregistered site would weigh at most the median).
  const { server, tokens } = await startTestServer(tmp.dir, { rounds: 2, minSites: 3 }, ['alpha', 'beta', 'gamma'], { alpha: 2, beta: 3, gamma: 5 });
  try {
    const a = startSite(server, tokens.alpha, shiftTrainer(0.1, { train: 2, validation: 1 }));
    const b = startSite(server, tokens.beta, shiftTrainer(0.2, { train: 3, validation: 1 }));
    const c = startSite(server, tokens.gamma, shiftTrainer(0.4, { train: 5, validation: 2 }));
    assert.equal(await server.federation.done, 'finished');
    await Promise.all([a.site.done, b.site.done, c.site.done]);

    // Each round adds sum(n_k * shift_k) / sum(n_k) = (0.2 + 0.6 + 2.0) / 10 = 0.28 to every weight.
    const start = initialWeights(tinyConfig, 7);
    const { body: bytes } = await api<Uint8Array>(server, '/api/rounds/2/model');
    const model = decodeModel(bytes);
    for (let k = 0; k < start.length; k++) {
      for (let i = 0; i < start[k].data.length; i += 7) {
        assert.ok(Math.abs(model.tensors[k].data[i] - (start[k].data[i] + 0.56)) < 1e-5, `tensor ${k}[${i}]`);
      }
    }

    const { body: rounds } = await api<{ round: number; status: string; sites_returned: number; globalMetrics: Record<string, number> | null }[]>(server, '/api/rounds');
    const done = rounds.filter((r) => r.status === 'completed' && r.round > 0);
    assert.deepEqual(done.map((r) => [r.round, r.sites_returned]), [[1, 3], [2, 3]]);
    // Global metric = validation-case-weighted mean of the sites' evaluations, each count capped at
    // the lower median (1 of 1, 1, 2): (0.6 + 0.7 + 0.9) / 3.
    assert.ok(Math.abs(done[1].globalMetrics!.dice_WT - 2.2 / 3) < 1e-9);

    for (const s of [a, b, c]) {
      const types = s.events.map((e) => e.type);
      for (const t of ['connected', 'round-announced', 'approval', 'training-started', 'update-sent', 'update-accepted', 'global-metrics', 'finished']) {
        assert.ok(types.includes(t as never), `site event ${t}`);
      }
    }
    const { body: audit } = await api<{ action: string }[]>(server, '/api/audit');
    const actions = audit.map((e) => e.action);
    for (const a of ['initial-model', 'round-announced', 'approval-approved', 'weights-sent', 'update-accepted', 'round-completed', 'evaluation-reported', 'federation-finished']) {
      assert.ok(actions.includes(a), `audit ${a}`);
    }

    // Round 2 trains on the global each site already received to evaluate: named by hash, not resent.
    const sent = audit.filter((e) => e.action === 'weights-sent') as unknown as { round: number; detail: { alreadyHeldBy: string[] } }[];
    assert.deepEqual(sent.map((e) => [e.round, [...e.detail.alreadyHeldBy].sort()]), [[1, []], [2, ['alpha', 'beta', 'gamma']]]);

    const login = await fetch(`${server.httpUrl}/?token=${ADMIN}`, { redirect: 'manual' });
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    assert.match(login.headers.get('set-cookie')!, /HttpOnly/);
    const viaCookie = await fetch(`${server.httpUrl}/`, { headers: { cookie } });
    assert.equal(viaCookie.status, 200);
    assert.match(await viaCookie.text(), /http-equiv="refresh"/);
    assert.equal((await fetch(`${server.httpUrl}/?token=nope`, { redirect: 'manual' })).status, 401);

    const page = await api<string>(server, '/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<svg/);
    assert.match(page.body, /alpha/);
    assert.equal((await api(server, '/api/status', '')).status, 401);
    assert.equal((await api(server, '/api/status', 'wrong')).status, 401);
  } finally {
    await server.close();
  }
});

test('FedAdam keeps its server moments with each checkpoint and a restarted server picks them up', async () => {
  const dir = `${tmp.dir}/fedadam`;
  const config = { rounds: 2, minSites: 1, strategy: { name: 'fedadam' as const, eta: 0.05, beta1: 0.9, beta2: 0.99, tau: 1e-3 } };
  const { server, tokens } = await startTestServer(dir, config, ['solo']);
  try {
    const solo = startSite(server, tokens.solo, shiftTrainer(0.1));
    assert.equal(await server.federation.done, 'finished');
    await solo.site.done;
  } finally {
    await server.close();
  }
  assert.ok(existsSync(join(dir, 'checkpoints', 'round-00002.state0.fsm')) && existsSync(join(dir, 'checkpoints', 'round-00002.state1.fsm')));
  const again = await startServer({ config: federationConfig({ ...config, rounds: 3 }), dbFile: join(dir, 'server.db'), port: 0, adminToken: ADMIN });
  try {
    assert.equal(again.federation.completedRounds, 2);
    const moments = again.federation.strategy.exportState();
    assert.ok(moments && moments[0][0].data.some((v) => v !== 0), 'first moment restored from the checkpoint');
  } finally {
    await again.close();
  }
});
