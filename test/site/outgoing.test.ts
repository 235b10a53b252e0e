/**
 * What an approval lists is what the wire then carries: a real server and a site runtime, the plan captured
 * from the approval request and compared with the metrics the server recorded from the update and the
 * evaluation; metrics describing fewer cases than the floor stay at the site.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { outgoingMetrics, outgoingPlan, privacyLines, progressMessage } from '../../site/outgoing.js';
import { SiteRuntime, type ApprovalRequest } from '../../site/runtime.js';
import { shiftTrainer, startTestServer, tempDir } from '../server/helpers.js';

const tmp = tempDir('outgoing');
after(() => tmp.cleanup());

test('metrics go out only for declared keys, finite values and at least the minimum number of cases', () => {
  assert.deepEqual(outgoingMetrics({ loss: 0.5, extra: 1, dice_WT: Number.NaN }, ['loss', 'dice_WT'], 5, 5), { loss: 0.5 });
  assert.deepEqual(outgoingMetrics({ loss: 0.5 }, ['loss'], 4, 5), {});
  const plan = outgoingPlan({ train: 6, validation: 2 }, { update: ['loss'], evaluation: ['dice_WT'] }, 5);
  assert.deepEqual(plan.map((m) => [m.message, m.fields, m.withheld]), [
    ['update', ['weights', 'numCases', 'metrics.loss', 'trainingSeconds', 'norm'], []],
    ['progress', ['epoch', 'epochs', 'loss'], []],
    ['evaluation', ['numCases'], ['dice_WT']],
  ]);
  // Four training cases, floor 5: the running loss of the progress message stays at the site too.
  const small = outgoingPlan({ train: 4, validation: 6 }, { update: ['loss'], evaluation: ['dice_WT'] }, 5);
  assert.deepEqual(small.map((m) => [m.message, m.fields, m.withheld]), [
    ['update', ['weights', 'numCases', 'trainingSeconds', 'norm'], ['loss']],
    ['progress', ['epoch', 'epochs'], ['loss']],
    ['evaluation', ['numCases', 'metrics.dice_WT'], []],
  ]);
  assert.deepEqual(progressMessage(3, { epoch: 1, epochs: 2, loss: 0.4 }, 4, 5), { type: 'progress', round: 3, epoch: 1, epochs: 2 });
  assert.deepEqual(progressMessage(3, { epoch: 1, epochs: 2, loss: 0.4 }, 5, 5), { type: 'progress', round: 3, epoch: 1, epochs: 2, loss: 0.4 });
});

test('the fedseg site prompt states the DP clip, the noise and epsilon so far and after the round', () => {
  const lines = privacyLines({ mode: 'central', clip: 0.5, noiseMultiplier: 3.79638671875, delta: 1e-5, epsilonSoFar: 2.0123, epsilonAfterRound: 2.71828, budget: { epsilon: 8, delta: 1e-5 } });
  assert.deepEqual(lines, [
    'Differential privacy (central): the update is clipped to L2 norm 0.5 before it leaves; the server adds Gaussian noise of standard deviation 1.9 (3.8 x the clip) to the sum of updates.',
    'Privacy spent by the released models: epsilon 2.01 so far, 2.72 after this round (delta 0.00001); budget epsilon 8 at delta 0.00001.',
  ]);
  // Distributed: this site's own share, sigma C / sqrt(t) = 1.9 / sqrt(3).
  const [distributed] = privacyLines({ mode: 'distributed', clip: 0.5, noiseMultiplier: 3.79638671875, delta: 1e-5, epsilonSoFar: 0, epsilonAfterRound: 1, budget: { epsilon: 8, delta: 1e-5 } }, { threshold: 3, clipRange: 1 });
  assert.equal(distributed, 'Differential privacy (distributed): the update is clipped to L2 norm 0.5 before it leaves; this site adds Gaussian noise of standard deviation 1.1 before secure aggregation masks the update, so that any 3 sites\' sum carries 1.9 (3.8 x the clip).');
});

test('the approval plan names exactly the metric keys the server then receives', async () => {
  const { server, tokens } = await startTestServer(tmp.dir, { rounds: 1, minSites: 1 }, ['alpha'], { alpha: 4 });
  const requests: ApprovalRequest[] = [];
  const site = new SiteRuntime({
    url: server.wsUrl, token: tokens.alpha, trainer: shiftTrainer(0.1, { train: 4, validation: 2 }), initialBackoffMs: 100,
    // 4 training cases reach the floor, 2 held-out cases do not.
    minMetricCases: 3,
    approve: (request) => {
      requests.push(request);
      return true;
    },
  });
  try {
    await site.start();
    assert.equal(await server.federation.done, 'finished');
    await site.done;
    const plan = Object.fromEntries(requests[0].outgoing.map((m) => [m.message, m]));
    const metricKeys = (fields: string[]) => fields.filter((f) => f.startsWith('metrics.')).map((f) => f.slice('metrics.'.length)).sort();
    // The server stores the update's metrics plus its own numCases and updateNorm, and the evaluation's plus numCases.
    const stored = (kind: 'train' | 'eval') => server.store.metrics(kind).filter((m) => m.site === 'alpha' && m.round === 1).map((m) => m.name).filter((n) => n !== 'numCases' && n !== 'updateNorm').sort();
    assert.deepEqual(metricKeys(plan.update.fields), ['dice_WT', 'loss']);
    assert.deepEqual(stored('train'), metricKeys(plan.update.fields));
    assert.deepEqual(metricKeys(plan.evaluation.fields), []);
    assert.deepEqual(plan.evaluation.withheld, ['dice_WT', 'dice_TC', 'dice_ET']);
    assert.deepEqual(stored('eval'), [], 'the held-out Dice of 2 cases stayed at the site');
    assert.ok(server.store.metrics('eval').some((m) => m.site === 'alpha' && m.round === 1 && m.name === 'numCases' && m.value === 2), 'the evaluation itself was sent, with its case count');
  } finally {
    site.stop();
    await server.close();
  }
});
