/**
 * Crash safety: the server runs as a child process (`fedseg server start`), is killed with SIGKILL
 * mid-round, and restarted on the same port; the sites reconnect by themselves and the federation
 * finishes. Nothing completed before the kill is lost, and a torn checkpoint is detected and ignored.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { startServer } from '../../server/index.js';
import { registerSite } from '../../server/index.js';
import { SiteRuntime } from '../../site/runtime.js';
import { ADMIN, federationConfig, shiftTrainer, tempDir, TINY_MODEL, waitFor } from './helpers.js';

const tmp = tempDir('crash');
after(() => tmp.cleanup());

interface ServerProcess {
  child: ChildProcess;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
}

function spawnServer(configFile: string, dbFile: string, port: number): ServerProcess {
  const child = spawn(process.execPath, ['bin/fedseg.js', 'server', 'start', '--config', configFile, '--db', dbFile, '--port', String(port), '--json', '--exit-when-done'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FEDSEG_ADMIN_TOKEN: ADMIN } });
  const events: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => events.push(JSON.parse(line) as Record<string, unknown>));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, events, exited };
}

type Row = Record<string, unknown>;
function snapshot(dbFile: string) {
  const db = new Database(dbFile, { readonly: true });
  try {
    return {
      audit: db.prepare('SELECT * FROM audit ORDER BY id').all() as Row[],
      rounds: db.prepare('SELECT * FROM rounds ORDER BY round, attempt').all() as Row[],
      approvals: db.prepare('SELECT * FROM approvals ORDER BY round, attempt, site').all() as Row[],
    };
  } finally {
    db.close();
  }
}

test('kill -9 mid-round and restart: resumes after the last completed round, loses nothing, ignores a torn checkpoint', async () => {
  const dbFile = join(tmp.dir, 'server.db');
  const configFile = join(tmp.dir, 'federation.json');
  writeFileSync(configFile, JSON.stringify({ model: TINY_MODEL, rounds: 3, minSites: 2, approvalDeadlineS: 20, trainingDeadlineS: 30, evaluationDeadlineS: 5, retryDelayS: 0, heartbeatS: 1, seed: 7 }));
  const tokens = { a: registerSite(dbFile, 'a').token, b: registerSite(dbFile, 'b').token };

  let server = spawnServer(configFile, dbFile, 0);
  const listening = await waitFor(() => server.events.find((e) => e.event === 'listening'), 'server to listen', 60_000);
  const port = listening.port as number;
  const sites = (['a', 'b'] as const).map((name) => {
    // Slow enough that the kill lands while round 2 is training.
    const site = new SiteRuntime({ url: listening.wsUrl as string, token: tokens[name], trainer: shiftTrainer(0.1, { train: 2, validation: 1 }, { delayMs: 1500 }), approve: () => true, initialBackoffMs: 200, maxBackoffMs: 1000 });
    const events: string[] = [];
    site.on('event', (e) => events.push(`${e.type}:${'round' in e ? e.round : ''}`));
    void site.start();
    return { site, events };
  });
  await waitFor(() => sites.every((s) => s.events.includes('training-started:2')), 'round 2 training', 60_000);
  const before = snapshot(dbFile);
  server.child.kill('SIGKILL');
  await server.exited;
  // A checkpoint write interrupted by the kill leaves only a temp file, which the restart sweeps.
  writeFileSync(join(tmp.dir, 'checkpoints', 'round-00002.fsm.tmp-99999'), 'partial');

  server = spawnServer(configFile, dbFile, port);
  assert.equal(await server.exited, 0, 'restarted server finishes the federation');
  await Promise.all(sites.map((s) => s.site.done));
  const afterRun = snapshot(dbFile);

  // Every audit entry, approval and completed round from before the kill is still there, unchanged.
  assert.deepEqual(afterRun.audit.slice(0, before.audit.length), before.audit);
  for (const a of before.approvals) assert.ok(afterRun.approvals.some((b) => JSON.stringify(b) === JSON.stringify(a)));
  const completedBefore = before.rounds.filter((r) => r.status === 'completed');
  assert.deepEqual(completedBefore.map((r) => r.round), [0, 1]);
  for (const r of completedBefore) assert.deepEqual(afterRun.rounds.find((x) => x.round === r.round && x.attempt === r.attempt), r);
  const round2 = afterRun.rounds.filter((r) => r.round === 2).map((r) => r.status);
  assert.deepEqual(round2, ['interrupted', 'completed']);
  assert.deepEqual(afterRun.rounds.filter((r) => r.status === 'completed').map((r) => r.round), [0, 1, 2, 3]);
  const actions = afterRun.audit.map((e) => e.action);
  for (const a of ['round-interrupted', 'resumed', 'partial-checkpoint-removed', 'federation-finished']) assert.ok(actions.includes(a), `audit ${a}`);
  assert.ok(sites.every((s) => s.events.some((e) => e.startsWith('disconnected')) && s.events.filter((e) => e.startsWith('connected')).length >= 2));

  // Tear the last checkpoint: the next start detects it by its SHA-256 and falls back to round 2.
  truncateSync(join(tmp.dir, 'checkpoints', 'round-00003.fsm'), 100);
  const restarted = await startServer({ config: federationConfig({ rounds: 3, minSites: 2, heartbeatS: 1 }), dbFile, port: 0, adminToken: ADMIN });
  try {
    assert.equal(restarted.federation.completedRounds, 2);
    const log = restarted.store.auditLog();
    assert.ok(log.some((e) => e.action === 'checkpoint-rejected' && e.round === 3));
    assert.equal(restarted.store.rounds().find((r) => r.round === 3 && r.status !== 'interrupted')?.status, 'invalid-checkpoint');
  } finally {
    await restarted.close();
  }
});
