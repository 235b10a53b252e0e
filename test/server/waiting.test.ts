/**
 * Every waiting state says what it waits for: the sentence itself (server/waiting.ts), and the same
 * sentence on the server log, /api/status, the status page, a site runtime (what `fedseg site` prints)
 * and the desktop app's connection state.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FederationLink, type FederationEvent } from '../../main/service/federation-link.js';
import { SiteStore } from '../../main/service/site-store.js';
import { registerSite, startServer } from '../../server/index.js';
import { describeWaiting, type WaitingInput } from '../../server/waiting.js';
import { SiteRuntime, type RuntimeEvent } from '../../site/runtime.js';
import { ADMIN, api, federationConfig, shiftTrainer, startSite, tempDir, waitFor } from './helpers.js';

const tmp = tempDir('waiting');
after(() => tmp.cleanup());

const base: WaitingInput = {
  state: 'running', config: { minSites: 3, rounds: 2, retryDelayS: 5 }, registered: ['site-1', 'site-2', 'site-3', 'site-4'],
  online: ['site-1', 'site-2'], completedRounds: 0, current: null, rejected: [], finalEvaluated: [], lastAttempt: null,
};
const at1405 = '2026-03-02T14:05:00.000Z';
const message = (input: Partial<WaitingInput>) => describeWaiting({ ...base, ...input }, 'UTC')?.message ?? null;

test('the waiting sentence names what is missing: sites, approvals, updates, final evaluations, a retry', () => {
  assert.equal(message({}), 'waiting for 1 more site (2 of minSites 3 connected; not connected: site-3, site-4)');
  assert.equal(message({ online: [] }), 'waiting for 3 more sites (0 of minSites 3 connected; not connected: site-1, site-2, site-3, site-4)');
  assert.equal(message({ registered: ['site-1', 'site-2'] }),
    'waiting for 1 more site (2 of minSites 3 connected); only 2 sites are registered: register more with `fedseg server add-site` or lower minSites in the federation config');
  const approval = { round: 1, attempt: 1, phase: 'approval', deadline: at1405, approvals: { 'site-1': 'approved', 'site-3': 'declined' }, participants: [], returned: [] };
  assert.equal(message({ online: ['site-1', 'site-2', 'site-3'], current: approval }),
    'waiting for approvals of round 1: site-2, site-4 (deadline 14:05:00 UTC; not connected: site-4)');
  const training = { ...approval, phase: 'training', participants: ['site-1', 'site-2', 'site-4'], returned: ['site-1'] };
  assert.equal(message({ current: training, rejected: ['site-4'] }), 'waiting for updates of round 1: site-2 (training deadline 14:05:00 UTC)');
  assert.equal(message({ current: { ...training, phase: 'aggregating' } }), null, 'aggregating waits on no one');
  assert.equal(message({ online: ['site-1', 'site-2', 'site-3'], completedRounds: 2, finalEvaluated: ['site-1'] }),
    'waiting for evaluations of the final model (round 2 of 2): site-2, site-3');
  assert.equal(message({ online: ['site-1', 'site-2', 'site-3'], lastAttempt: { round: 1, attempt: 2, status: 'abandoned', reason: '1 connected site(s) approved, 3 needed', endedAt: '2026-03-02T14:04:55.000Z' } }),
    'waiting to retry round 1 at 14:05:00 UTC: attempt 2 was abandoned (1 connected site(s) approved, 3 needed)');
  assert.equal(message({ online: ['site-1', 'site-2', 'site-3'] }), null, 'a quorum and no round yet: the round starts now');
  assert.equal(message({ state: 'finished' }), null);
});

test('a real server says on its log, /api/status, the status page, every site and the app what it waits for', async () => {
  const dbFile = join(tmp.dir, 'server.db');
  const tokens = Object.fromEntries(['site-1', 'site-2', 'site-3'].map((s) => [s, registerSite(dbFile, s).token]));
  const log: string[] = [];
  const server = await startServer({
    config: federationConfig({ minSites: 3, approvalDeadlineS: 60, trainingDeadlineS: 60 }), dbFile, port: 0, adminToken: ADMIN, log: (line) => log.push(line),
  });
  const sites: SiteRuntime[] = [];
  let link: FederationLink | null = null;
  try {
    const quorum = 'waiting for 1 more site (2 of minSites 3 connected; not connected: site-3)';
    const one = startSite(server, tokens['site-1'], shiftTrainer(0.1));
    sites.push(one.site);
    await waitFor(() => log.includes('waiting for 2 more sites (1 of minSites 3 connected; not connected: site-2, site-3)'), 'the log line for one site');

    // site-2 is the desktop app's federation link.
    const appEvents: FederationEvent[] = [];
    link = new FederationLink(new SiteStore(join(tmp.dir, 'app')), () => shiftTrainer(0.2), (e) => appEvents.push(e));
    await link.connect(server.wsUrl, tokens['site-2']);
    const appWaiting = () => appEvents.flatMap((e) => (e.type === 'connection' && e.state.waiting !== undefined ? [e.state.waiting] : [])).at(-1);
    await waitFor(() => log.includes(quorum), 'the log line for two sites');
    await waitFor(() => one.events.some((e) => e.type === 'waiting' && e.message === quorum), 'site-1 told');
    await waitFor(() => appWaiting() === `The server is ${quorum}.`, 'the app told');

    const status = await api<{ waiting: { for: string; message: string; sites: string[] } }>(server, '/api/status');
    assert.deepEqual(status.body.waiting, { for: 'sites', message: quorum, sites: ['site-3'], deadline: null });
    const page = await fetch(`${server.httpUrl}/`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.ok((await page.text()).includes(`<b>Now ${quorum}</b>`));

    // site-3 connects but its admin has not decided yet: everyone hears whose approval is missing.
    let decide!: (approve: boolean) => void;
    const third = new SiteRuntime({
      url: server.wsUrl, token: tokens['site-3'], trainer: shiftTrainer(0.3), initialBackoffMs: 100,
      approve: () => new Promise<boolean>((resolve) => (decide = resolve)),
    });
    const thirdEvents: RuntimeEvent[] = [];
    third.on('event', (e) => thirdEvents.push(e));
    sites.push(third);
    await third.start();
    await waitFor(() => link && appEvents.some((e) => e.type === 'round' && e.patch.status === 'announced'), 'the app asked');
    link.decide(1, true); // the app's admin approves; site-3 is still deciding
    const onlyThird = /^waiting for approvals of round 1: site-3 \(deadline \d\d:\d\d:\d\d [^)]+\)$/;
    await waitFor(() => log.some((l) => onlyThird.test(l)), 'only site-3 left to approve').catch((err: Error) => assert.fail(`${err.message}; log:\n${log.join('\n')}`));
    await waitFor(() => thirdEvents.some((e) => e.type === 'waiting' && onlyThird.test(e.message ?? '')), 'site-3 told it is the one awaited');
    await waitFor(() => onlyThird.test((appWaiting() ?? '').replace(/^The server is (.*)\.$/, '$1')), 'the app told site-3 is awaited');
    decide(true);
    await waitFor(() => server.federation.completedRounds === 1, 'round 1 completed');
    // Each step is said the moment it begins, naming every site it waits for, however fast they answer.
    const firstOf = (prefix: string) => log.find((l) => l.startsWith(prefix));
    assert.match(firstOf('waiting for approvals of round 1')!, /^waiting for approvals of round 1: site-1, site-2, site-3 \(/);
    assert.match(firstOf('waiting for updates of round 1')!, /^waiting for updates of round 1: site-1, site-2, site-3 \(/, log.join('\n'));
    await server.federation.done;
    await waitFor(() => appWaiting() === null, 'the app no longer shows a wait once the federation is done');
  } finally {
    await link?.disconnect();
    for (const s of sites) s.stop();
    await server.close();
  }
});
