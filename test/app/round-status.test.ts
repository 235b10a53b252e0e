/**
 * The app's record of a round (main/service/federation-link.ts) follows the runtime's events in
 * whatever order the two channels deliver them: the server's verdict and the round's result come
 * over the WebSocket, the upload's own answer over HTTP, so 'update-sent' can come last.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FederationLink } from '../../main/service/federation-link.js';
import { SiteStore } from '../../main/service/site-store.js';
import type { RuntimeEvent } from '../../site/runtime.js';
import { shiftTrainer, tempDir } from '../server/helpers.js';

const tmp = tempDir('round-status');
after(() => tmp.cleanup());

function linkWithStore(name: string) {
  const store = new SiteStore(join(tmp.dir, name));
  // As the site service does: every round patch goes into the store.
  const link = new FederationLink(store, () => shiftTrainer(0.1), (e) => {
    if (e.type === 'round') store.upsertRound(e.round, e.patch);
  });
  const feed = (e: RuntimeEvent) => (link as unknown as { onRuntimeEvent(e: RuntimeEvent): void }).onRuntimeEvent(e);
  return { store, feed, status: (round: number) => store.rounds.find((r) => r.round === round)?.status };
}

const sent: RuntimeEvent = { type: 'update-sent', round: 2, numCases: 2, bytes: 100, norm: 0.1, metrics: { loss: 0.4 }, sha256: 'ab'.repeat(32) };
const completed: RuntimeEvent = { type: 'round-result', round: 2, status: 'completed', sites: ['a', 'b'], sitesRegistered: 2 };

test('the upload\'s answer after the verdict and the round result: the round stays complete', () => {
  const { feed, status, store } = linkWithStore('late-answer');
  feed({ type: 'training-started', round: 2, numCases: 2 });
  feed({ type: 'update-accepted', round: 2, norm: 0.1 });
  feed(completed);
  assert.equal(status(2), 'complete');
  feed(sent);
  assert.equal(status(2), 'complete');
  assert.deepEqual(store.rounds.find((r) => r.round === 2)?.contribution, { caseCount: 2, loss: 0.4 });
});

test('in the usual order: training, sent, accepted, complete', () => {
  const { feed, status } = linkWithStore('usual');
  feed({ type: 'training-started', round: 2, numCases: 2 });
  assert.equal(status(2), 'training');
  feed(sent);
  assert.equal(status(2), 'sent');
  feed({ type: 'update-accepted', round: 2, norm: 0.1 });
  assert.equal(status(2), 'accepted');
  feed(completed);
  assert.equal(status(2), 'complete');
});

test('a rejection that arrives before the upload\'s answer is kept', () => {
  const { feed, status } = linkWithStore('rejected');
  feed({ type: 'training-started', round: 2, numCases: 2 });
  feed({ type: 'update-rejected', round: 2, reason: 'update norm is not finite' });
  feed(sent);
  assert.equal(status(2), 'rejected');
});
