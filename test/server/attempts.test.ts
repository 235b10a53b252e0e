import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { registerSite, startServer } from '../../server/index.js';
import { ADMIN, federationConfig, shiftTrainer, startSite, tempDir } from './helpers.js';

const tmp = tempDir('attempts');
after(() => tmp.cleanup());

/** One server life on `dbFile` with one site that approves (or not); returns how the federation ended. */
async function serverLife(dbFile: string, token: string, approve: boolean | (() => boolean), retryDelayS = 0) {
  const server = await startServer({ config: federationConfig({ rounds: 1, minSites: 1, maxAttemptsPerRound: 2, retryDelayS }), dbFile, port: 0, adminToken: ADMIN });
  const { site } = startSite(server, token, shiftTrainer(0.1, { train: 2, validation: 1 }), approve);
  return { server, site };
}

test('attempts toward maxAttemptsPerRound survive a restart; a restart after the federation gave up starts a fresh count', { timeout: 60_000 }, async () => {
  const dbFile = join(tmp.dir, 'server.db');
  const { token } = registerSite(dbFile, 'h1');

  // Life 1: the only site declines, attempt 1 misses its quorum; the server stops while waiting to retry.
  const first = await serverLife(dbFile, token, false, 60);
  await new Promise((resolve) => first.server.federation.once('round-abandoned', resolve));
  first.site.stop();
  await first.server.close();

  // Life 2: one more missed attempt reaches the limit of 2, counting the one from before the restart.
  const second = await serverLife(dbFile, token, false);
  assert.equal(await second.server.federation.done, 'failed');
  const rounds = second.server.store.rounds().filter((r) => r.round === 1).map((r) => [r.attempt, r.status]);
  assert.deepEqual(rounds, [[1, 'abandoned'], [2, 'abandoned']]);
  const failed = second.server.store.auditLog().filter((e) => e.action === 'federation-failed');
  assert.equal(failed.length, 1);
  assert.match(failed[0].detail, /round 1 missed its quorum 2 times/);
  second.site.stop();
  await second.server.close();

  // Life 3: the operator restarts the failed federation, which gets a fresh count: the site declines
  // once more (1 of 2 missed, so retried), then approves and round 1 completes.
  let asked = 0;
  const third = await serverLife(dbFile, token, () => ++asked > 1);
  assert.equal(await third.server.federation.done, 'finished');
  const all = third.server.store.rounds().filter((r) => r.round === 1).map((r) => [r.attempt, r.status]);
  assert.deepEqual(all, [[1, 'abandoned'], [2, 'abandoned'], [3, 'abandoned'], [4, 'completed']]);
  await third.site.done;
  await third.server.close();
});
