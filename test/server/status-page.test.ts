import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globalMetricsByRound } from '../../server/metrics-summary.js';
import { renderStatusPage } from '../../server/status-page.js';
import { describeWaiting } from '../../server/waiting.js';

test('the status page shows "k of n sites returned", per-site progress and a Dice chart; text is escaped', () => {
  const globalMetrics = globalMetricsByRound([
    { round: 1, site: 'a', name: 'dice_WT', value: 0.5 }, { round: 1, site: 'a', name: 'numCases', value: 1 },
    { round: 1, site: 'b', name: 'dice_WT', value: 0.8 }, { round: 1, site: 'b', name: 'numCases', value: 2 },
    { round: 2, site: 'a', name: 'dice_WT', value: 0.7 }, { round: 2, site: 'a', name: 'numCases', value: 1 },
  ]);
  // Case counts 1 and 2, each capped at the lower median 1: (0.5 + 0.8) / 2.
  assert.ok(Math.abs(globalMetrics[0].metrics.dice_WT - 0.65) < 1e-12);
  const html = renderStatusPage({
    state: 'running', strategy: 'fedavg', totalRounds: 5, completedRounds: 2,
    current: { round: 3, attempt: 1, phase: 'training', deadline: '2026-01-01T00:00:00.000Z', approvals: { a: 'approved', b: 'approved', c: 'approved' }, participants: ['a', 'b', 'c'], returned: ['a', 'b'], progress: { c: { epoch: 1, epochs: 2 } } },
    sites: ['a', 'b', 'c'].map((name) => ({
      name, online: true, declaredTrain: 4, registeredCases: name === 'c' ? null : 4, lastSeen: null, bytesSent: 1e6, bytesReceived: 2e6,
      flag: name === 'b' ? { clipped: 2, rejected: 1, of: 5 } : null,
    })),
    rounds: [{ round: 1, attempt: 1, status: 'abandoned', sites_returned: null, num_cases: null, reason: '<script>alert(1)</script>', ended_at: null }],
    globalMetrics,
    waiting: describeWaiting({
      state: 'running', config: { minSites: 3, rounds: 5, retryDelayS: 5 }, registered: ['a', 'b', 'c'], online: ['a', 'b', 'c'], completedRounds: 2,
      current: { round: 3, attempt: 1, phase: 'training', deadline: '2026-01-01T00:00:00.000Z', approvals: {}, participants: ['a', 'b', 'c'], returned: ['a', 'b'] },
      rejected: [], finalEvaluated: [], lastAttempt: null,
    }, 'UTC'),
    endReason: null,
    privacy: { mode: 'central', clip: 1, noiseMultiplier: 3.8, delta: 1e-5, epsilonSpent: 2.5, budget: { epsilon: 8, delta: 1e-5 } },
  });
  assert.match(html, /Differential privacy \(central\): clip 1, noise multiplier 3.8; epsilon spent <b>2.500<\/b> at delta 0.00001 of the budget 8/);
  assert.match(html, /<b>Now waiting for updates of round 3: c \(training deadline 00:00:00 UTC\)<\/b>/);
  assert.match(html, /2 of 3 sites returned/);
  assert.match(html, /training \(epoch 1\/2\)/);
  assert.match(html, /<polyline/);
  assert.match(html, /⚠ 2 clipped, 1 rejected of last 5 updates/);
  assert.equal(html.match(/class="flag"/g)?.length, 1, 'only the site with repeated clipped or rejected updates is flagged');
  assert.match(html, /<td>not registered<\/td>/);
  assert.ok(!html.includes('<script>'));
});
