/**
 * DP-FedAvg over real sockets: a server with a privacy budget that allows one round, two site
 * runtimes. The approvals carry epsilon so far and after the round, the sites' updates arrive
 * clipped, the round's model is exactly the seeded DP aggregate, and the server refuses round 2
 * with the reason in the log, the audit trail and the status API.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { aggregateInMemory, FedAvg } from '../../core/federation/strategies/index.js';
import { initialWeights } from '../../core/model/init.js';
import { exactGaussianEpsilon } from '../../core/privacy/accountant.js';
import { clipUpdate } from '../../core/privacy/clip.js';
import { DifferentiallyPrivate } from '../../core/privacy/dp-aggregation.js';
import { decodeModel } from '../../core/weights/index.js';
import { SiteRuntime, type ApprovalRequest, type RuntimeEvent } from '../../site/runtime.js';
import { api, shifted, shiftTrainer, startTestServer, tempDir, tinyConfig } from '../server/helpers.js';

const tmp = tempDir('dp-federation');
after(() => tmp.cleanup());

const PRIVACY = { clip: 0.5, noiseMultiplier: 2, delta: 1e-5, budget: { epsilon: 2.5, delta: 1e-5 }, noiseSeed: 9 };

test('a budget that allows one round: epsilon on the approvals, clipped updates, the seeded DP model, and a clear refusal of round 2', async () => {
  const { server, tokens } = await startTestServer(tmp.dir, { rounds: 3, minSites: 2, privacy: PRIVACY }, ['alpha', 'beta']);
  const requests: ApprovalRequest[] = [];
  const events: RuntimeEvent[] = [];
  const sites = [['alpha', 0.1], ['beta', -0.2]].map(([name, shift]) => {
    const site = new SiteRuntime({
      url: server.wsUrl, token: tokens[name as string], trainer: shiftTrainer(shift as number), initialBackoffMs: 100,
      approve: (request) => {
        requests.push(request);
        return true;
      },
    });
    site.on('event', (e) => events.push(e));
    return site;
  });
  try {
    for (const site of sites) await site.start();
    assert.equal(await server.federation.done, 'finished');
    assert.equal(server.federation.completedRounds, 1);

    // Both approvals of round 1 showed epsilon 0 so far and the exact one-round value after it; no round 2 was announced.
    assert.deepEqual(requests.map((r) => r.round), [1, 1]);
    for (const r of requests) {
      assert.deepEqual(r.privacy, {
        mode: 'central', clip: 0.5, noiseMultiplier: 2, delta: 1e-5, epsilonSoFar: 0, epsilonAfterRound: exactGaussianEpsilon(2, 1e-5), budget: PRIVACY.budget,
      });
    }
    // Every parameter moved by 0.1 or 0.2: far beyond the clip, so both updates left the sites at norm 0.5.
    const accepted = events.flatMap((e) => (e.type === 'update-accepted' ? [e.norm] : []));
    assert.equal(accepted.length, 2);
    for (const norm of accepted) assert.ok(norm !== undefined && Math.abs(norm - 0.5) < 1e-5, `accepted update norm ${norm}`);

    // The round's model is the DP aggregate of the clipped updates with the configured noise seed, bit for bit.
    const global = initialWeights(tinyConfig, 7);
    const dp = new DifferentiallyPrivate(new FedAvg(), { clip: 0.5, noiseMultiplier: 2, samplingRate: 1, noiseSeed: 9 });
    dp.configureRound(1, ['alpha', 'beta'], { epochs: 1, learningRate: 1, batchSize: 1, mu: 0, seed: 0 });
    const updates = [['alpha', 0.1], ['beta', -0.2]].map(([site, shift]) => ({ site: site as string, numCases: 4, weights: clipUpdate(global, shifted(global, shift as number), 0.5).weights }));
    const expected = aggregateInMemory(dp, 1, updates, global);
    const row = server.store.completedRounds().find((r) => r.round === 1)!;
    const saved = decodeModel(readFileSync(join(tmp.dir, 'checkpoints', row.checkpoint!))).tensors;
    assert.deepEqual(saved.map((t) => [...t.data]), expected.map((t) => [...t.data]));

    const refusal = /privacy budget: round 2 would bring epsilon to 2\.\d{3} at delta 0\.00001, over the budget of 2\.5; the federation ends after 1 round\(s\)/;
    const audit = server.store.auditLog().find((a) => a.action === 'privacy-budget-exhausted');
    assert.ok(audit && refusal.test(audit.detail ?? ''), `audit entry: ${JSON.stringify(audit)}`);
    const status = await api<{ state: string; endReason: string | null; privacy: { epsilonSpent: number; budget: { epsilon: number } } | null }>(server, '/api/status');
    assert.equal(status.body.state, 'finished');
    assert.match(status.body.endReason ?? '', refusal);
    assert.equal(status.body.privacy?.epsilonSpent, exactGaussianEpsilon(2, 1e-5));
    assert.equal(status.body.privacy?.budget.epsilon, 2.5);
    const page = await fetch(server.httpUrl.replace(/\/$/, '') + '/', { headers: { authorization: 'Bearer test-admin-token-4f9c2b7e1d' } });
    assert.match(await page.text(), /privacy budget: round 2 would bring epsilon/);
  } finally {
    for (const site of sites) site.stop();
    await server.close();
  }
});

test('a restart with another privacy block refuses the existing state: its epsilon was spent under the old noise', async () => {
  const dir = join(tmp.dir, 'restart');
  const { server } = await startTestServer(dir, { rounds: 1, privacy: PRIVACY }, ['alpha']);
  await server.close();
  await assert.rejects(startTestServer(dir, { rounds: 1, privacy: { ...PRIVACY, noiseMultiplier: 1 } }), /different privacy/);
});
