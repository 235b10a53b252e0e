/**
 * The update inspector (server/update-inspector.ts): on its worker threads, an update's verdict, norm
 * and hash are the ones inspectUpdate gives on the event loop, bit for bit; the global model's
 * version is followed; a thread that dies fails only its own inspections.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { UpdateFrameHeader } from '../../core/federation/protocol.js';
import type { UpdateContext } from '../../core/federation/validate-update.js';
import { makeModelConfig } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { architectureHash, encodeModel } from '../../core/weights/index.js';
import { GlobalModel } from '../../server/global-model.js';
import { inspectUpdate } from '../../server/update-intake.js';
import { UpdateInspector } from '../../server/update-inspector.js';

const config = makeModelConfig({ baseFilters: 4, depth: 2, inputShape: [16, 16, 16] });
const hash = architectureHash(config);
const globalA = initialWeights(config, 1);
const modelOf = (seed: number) => {
  const model = new GlobalModel(hash);
  model.adopt(0, initialWeights(config, seed), String(seed).repeat(64), new Uint8Array());
  return model;
};
const modelA = modelOf(1);
const modelB = modelOf(2);
const header: UpdateFrameHeader = { kind: 'update', round: 3, attempt: 1, architectureHash: hash, numCases: 4, metrics: { loss: 0.5 }, trainingSeconds: 1 };
const context = (model = modelA): UpdateContext => ({
  round: 3, attempt: 1, architectureHash: hash, global: model.tensors, declaredCases: 10, registeredCases: 10, alreadySubmitted: false, participating: true,
});
const trained = globalA.map((t, k) => ({ ...t, data: t.data.map((v, i) => v + Math.sin(7 * i + k) * 1e-3) }));
const file = encodeModel(config, trained);

const inspector = new UpdateInspector(config, 2);
after(() => inspector.close());

test('the global model lives in shared memory, holding the values it adopted', () => {
  assert.ok(modelA.shared.buffer instanceof SharedArrayBuffer);
  assert.deepEqual(modelA.tensors.map((t) => t.data), globalA.map((t) => t.data));
  assert.ok(modelA.tensors.every((t) => t.data.buffer === modelA.shared.buffer));
  assert.equal(modelA.shared.version, '1'.repeat(64));
  // Every other model reuses the buffer of the model two before it, holding the new values.
  const model = modelOf(1);
  const first = model.shared.buffer;
  model.adopt(1, initialWeights(config, 2), '2'.repeat(64), new Uint8Array());
  assert.notEqual(model.shared.buffer, first);
  model.adopt(2, initialWeights(config, 3), '3'.repeat(64), new Uint8Array());
  assert.equal(model.shared.buffer, first);
  assert.deepEqual(model.tensors.map((t) => t.data), initialWeights(config, 3).map((t) => t.data));
});

test('a worker thread gives the same verdict, norm and hash as the event loop did, and spools from the frame itself', async () => {
  const expected = inspectUpdate(file, header, context(), config, 'site-a');
  assert.ok(expected.ok);
  const inShared = new Uint8Array(new SharedArrayBuffer(file.length + 8), 8, file.length);
  inShared.set(file);
  for (const payload of [file, inShared]) {
    const got = await inspector.inspect(payload, header, context(), modelA.shared, 'site-a');
    assert.ok(got.ok);
    assert.equal(got.sha256, expected.sha256);
    assert.equal(Object.is(got.norm, expected.norm), true, `norm ${got.norm} vs ${expected.norm}`);
    assert.deepEqual(got.tensorBytes, expected.tensorBytes);
    if (payload === inShared) assert.equal(got.tensorBytes.buffer, inShared.buffer, 'a frame in shared memory is not copied');
  }
  // A new global model (the next round): the norm follows it.
  const next = await inspector.inspect(file, header, context(modelB), modelB.shared, 'site-a');
  const nextExpected = inspectUpdate(file, header, context(modelB), config, 'site-a');
  assert.ok(next.ok && nextExpected.ok);
  assert.equal(next.norm, nextExpected.norm);
  assert.notEqual(next.norm, expected.norm);
});

test('refusals come back with the reason, naming the site and what is wrong', async () => {
  const corrupt = Uint8Array.from(file);
  corrupt[corrupt.length - 100] ^= 1;
  const bad = await inspector.inspect(corrupt, header, context(), modelA.shared, 'site-b');
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.reason : '', /model file rejected: .*update from site-b.*SHA-256/);
  const nan = encodeModel(config, trained.map((t, k) => (k === 1 ? { ...t, data: t.data.map((v, i) => (i === 0 ? Number.NaN : v)) } : t)));
  const notFinite = await inspector.inspect(nan, header, context(), modelA.shared, 'site-b');
  assert.deepEqual(notFinite, { ok: false, reason: `tensor "${trained[1].name}" holds NaN or Infinity` });
});

test('a thread that dies fails its own inspections with a clear error; the next inspection gets a new thread', async () => {
  const solo = new UpdateInspector(config, 1);
  try {
    const first = await solo.inspect(file, header, context(), modelA.shared, 'site-c');
    assert.ok(first.ok);
    const thread = (solo as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads[0];
    // Stopped before it can take the request: the request is pending when the thread exits.
    const stopped = thread.worker.terminate();
    const inFlight = solo.inspect(file, header, context(), modelA.shared, 'site-c');
    await stopped;
    await assert.rejects(inFlight, /update inspector thread exited/);
    const again = await solo.inspect(file, header, context(), modelA.shared, 'site-c');
    assert.ok(again.ok);
  } finally {
    await solo.close();
  }
  await assert.rejects(solo.inspect(file, header, context(), modelA.shared, 'site-c'), /the server is stopping/);
});
