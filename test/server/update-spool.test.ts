/**
 * The update spool (server/update-spool.ts): private files in the server's folder, and aggregation
 * from it that equals aggregation in memory bit for bit, for whole updates and for blocks.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { clipInPlace, planBounds, type BoundReport } from '../../core/federation/bound-updates.js';
import { aggregateInMemory, createStrategy, type ClientUpdate, type Strategy } from '../../core/federation/strategies/index.js';
import { l2Distance, type TensorList } from '../../core/federation/tensors.js';
import { aggregateSpooled, UpdateSpool } from '../../server/update-spool.js';
import { tempDir } from './helpers.js';

const tmp = tempDir('spool');
after(() => tmp.cleanup());
let n = 0;
const dir = () => join(tmp.dir, String(++n));

let seed = 11;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
const global: TensorList = [
  { name: 'conv', shape: [3, 3, 2, 5], data: Float32Array.from({ length: 90 }, random) },
  { name: 'bias', shape: [5], data: new Float32Array(5) },
  { name: 'head', shape: [5, 4], data: Float32Array.from({ length: 20 }, random) },
];
const SITES = ['s1', 's2', 's3', 's4', 's5', 's6', 'far'];
const updates: ClientUpdate[] = SITES.map((site, k) => ({
  site, numCases: 1 + k,
  weights: global.map((t) => ({ ...t, data: t.data.map((v) => v + (site === 'far' ? 40 : 0.1) * random()) })),
}));

function bytesOf(weights: TensorList): Uint8Array {
  const out = new Uint8Array(weights.reduce((s, t) => s + t.data.byteLength, 0));
  let offset = 0;
  for (const t of weights) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
    offset += t.data.byteLength;
  }
  return out;
}

/** What the server's intake records of each update, and the bound plan it makes from that. */
function plan(): BoundReport[] {
  return planBounds(updates.map((u) => ({ site: u.site, numCases: u.numCases, registeredCases: u.numCases, norm: l2Distance(u.weights, global) })), l2Distance(global)).reports;
}

/** The same updates clipped in memory, for aggregateInMemory. */
function clippedInMemory(reports: BoundReport[]): ClientUpdate[] {
  return updates.map((u, k) => ({
    site: u.site, numCases: reports[k].weight,
    weights: u.weights.map((t, i) => {
      const data = new Float32Array(t.data);
      clipInPlace(global[i].data, data, reports[k]);
      return { ...t, data };
    }),
  }));
}

async function spooled(strategy: () => Strategy, columnBudgetBytes?: number): Promise<{ result: TensorList; reports: BoundReport[] }> {
  const spool = new UpdateSpool(dir()).round(1, 1);
  // Written in reverse order: the files' order does not matter, the reports' order does.
  for (const u of [...updates].reverse()) await spool.write(u.site, bytesOf(u.weights));
  const reports = plan();
  const result = await aggregateSpooled(strategy(), 1, global, spool, reports, columnBudgetBytes);
  spool.discard();
  return { result, reports };
}

const bits = (weights: TensorList) => weights.map((t) => [...new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length)]);

test('the spool folder is 0700 and its files 0600, and a restart sweeps what a previous process left', async () => {
  const root = dir();
  mkdirSync(root, { mode: 0o755 });
  const spool = new UpdateSpool(root);
  assert.equal(statSync(root).mode & 0o777, 0o700, 'an existing folder is made private too');
  const round = spool.round(3, 2);
  await round.write('site-a', bytesOf(global));
  assert.equal(statSync(round.dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(round.dir, 'site-a.f32')).mode & 0o777, 0o600);
  writeFileSync(join(root, 'stray'), 'x');
  assert.deepEqual(new UpdateSpool(root).sweep().sort(), ['round-3-attempt-2', 'stray']);
});

test('FedAvg from the spool, one update at a time with clipping on the way, equals FedAvg in memory bit for bit', async () => {
  const { result, reports } = await spooled(() => createStrategy({ name: 'fedavg' }));
  assert.deepEqual(reports.map((r) => r.clippedTo !== null), [false, false, false, false, false, false, true], 'the far update is clipped');
  assert.deepEqual(bits(result), bits(aggregateInMemory(createStrategy({ name: 'fedavg' }), 1, clippedInMemory(reports), global)));
  const adam = createStrategy({ name: 'fedadam', eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  const fromSpool = await spooled(() => createStrategy({ name: 'fedadam', eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }));
  assert.deepEqual(bits(fromSpool.result), bits(aggregateInMemory(adam, 1, clippedInMemory(reports), global)));
});

test('median and trimmed mean read block by block from the spool equal the in-memory result exactly, for any block size', async () => {
  const reports = plan();
  for (const name of ['median', 'trimmed-mean'] as const) {
    const strategy = () => createStrategy(name === 'median' ? { name } : { name, beta: 0.2 });
    const expected = bits(aggregateInMemory(strategy(), 1, clippedInMemory(reports), global));
    // Budgets of 1 value per update, a few, and more than the model: blocks of 1, 3 and all.
    for (const budget of [4 * SITES.length, 12 * SITES.length, 1 << 20]) {
      assert.deepEqual(bits((await spooled(strategy, budget)).result), expected, `${name}, budget ${budget} bytes`);
    }
  }
});
