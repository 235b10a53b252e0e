import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { makeModelConfig } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { parameterSpecs } from '../../core/model/parameters.js';
import { architectureHash, decodeModel, encodeModel, loadModelFile, saveModelFile } from '../../core/weights/index.js';

const unet = makeModelConfig({ baseFilters: 4, depth: 3, inputShape: [16, 16, 16] });
const attention = makeModelConfig({ ...unet, arch: 'attention-unet' });

/** Weights with awkward bit patterns (negative zero, subnormals, NaN payloads, extremes) to prove bit-exactness. */
function awkwardWeights() {
  const weights = initialWeights(unet, 7);
  const special = new Uint32Array([0x80000000, 0x00000001, 0x7fc00123, 0x7f7fffff, 0xff800000, 0x3f800000]);
  weights[0].data.set(new Float32Array(special.buffer));
  return weights;
}

function bits(data: Float32Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

function assertRejects(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof FedSegError && pattern.test(err.message));
}

test('encode/decode round trip is bit-exact and keeps config, manifest order and meta', () => {
  const weights = awkwardWeights();
  const bytes = encodeModel(unet, weights, { round: 3, note: 'x' });
  const decoded = decodeModel(bytes);
  assert.deepEqual(decoded.config, unet);
  assert.deepEqual(decoded.meta, { round: 3, note: 'x' });
  assert.equal(decoded.architectureHash, architectureHash(unet));
  assert.match(decoded.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(decoded.tensors.map((t) => t.name), parameterSpecs(unet).map((p) => p.name));
  decoded.tensors.forEach((t, i) => {
    assert.deepEqual(t.shape, weights[i].shape);
    assert.deepEqual(bits(t.data), bits(weights[i].data));
  });
  // Deterministic encoding: the same model gives the same bytes.
  assert.deepEqual(encodeModel(unet, weights, { round: 3, note: 'x' }), bytes);
});

test('decoding works from an unaligned view (e.g. a slice of a network frame)', () => {
  const bytes = encodeModel(unet, awkwardWeights());
  const framed = new Uint8Array(bytes.length + 3);
  framed.set(bytes, 3);
  const decoded = decodeModel(framed.subarray(3));
  assert.deepEqual(bits(decoded.tensors[5].data), bits(awkwardWeights()[5].data));
});

test('shareMemory views an aligned input in place and copies an unaligned one', () => {
  const bytes = encodeModel(unet, awkwardWeights());
  const shared = decodeModel(bytes, { shareMemory: true });
  assert.equal(shared.tensors[0].data.buffer, bytes.buffer, 'aligned: a view of the input');
  assert.deepEqual(bits(shared.tensors[3].data), bits(awkwardWeights()[3].data));
  assert.equal(shared.tensorBytes.byteLength, shared.tensors.reduce((n, t) => n + t.data.byteLength, 0));
  const framed = new Uint8Array(bytes.length + 3);
  framed.set(bytes, 3);
  const unaligned = decodeModel(framed.subarray(3), { shareMemory: true });
  assert.notEqual(unaligned.tensors[0].data.buffer, framed.buffer, 'unaligned: copied');
  assert.deepEqual(bits(unaligned.tensors[3].data), bits(awkwardWeights()[3].data));
});

test('architecture hash is stable, ignores the window size and separates architectures', () => {
  assert.equal(architectureHash(unet), architectureHash(makeModelConfig({ baseFilters: 4, depth: 3, inputShape: [16, 16, 16] })));
  assert.equal(architectureHash(unet), architectureHash({ ...unet, inputShape: [32, 64, 32] }));
  const others = [attention, { ...unet, baseFilters: 8 }, { ...unet, upsampling: 'nearest' as const }, makeModelConfig({ baseFilters: 4, depth: 2, inputShape: [16, 16, 16] })];
  for (const other of others) assert.notEqual(architectureHash(other), architectureHash(unet));
});

test('every single-byte corruption is rejected', () => {
  const bytes = encodeModel(unet, initialWeights(unet, 1));
  for (const position of [9, 20, 200, Math.floor(bytes.length / 2), bytes.length - 40, bytes.length - 1]) {
    const bad = bytes.slice();
    bad[position] ^= 0x10;
    assert.throws(() => decodeModel(bad, { source: 'm.fsm' }), (err: unknown) => err instanceof FedSegError && /m\.fsm/.test(err.message), `byte ${position}`);
  }
  const flipped = bytes.slice();
  flipped[bytes.length - 100] ^= 1;
  assertRejects(() => decodeModel(flipped, { source: 'm.fsm' }), /m\.fsm: SHA-256 mismatch/);
});

test('truncated, wrong-magic and trailing-garbage inputs are rejected with the reason', () => {
  const bytes = encodeModel(unet, initialWeights(unet, 1));
  assertRejects(() => decodeModel(bytes.subarray(0, bytes.length - 1), { source: 'a.fsm' }), /a\.fsm: truncated/);
  assertRejects(() => decodeModel(bytes.subarray(0, 30)), /truncated/);
  assertRejects(() => decodeModel(bytes.subarray(0, 5)), /truncated/);
  assertRejects(() => decodeModel(new TextEncoder().encode('{"not":"a model"}xxxxxxxxxxxxxxxx')), /wrong magic/);
  const longer = new Uint8Array(bytes.length + 4);
  longer.set(bytes);
  assertRejects(() => decodeModel(longer), /4 unexpected bytes/);
});

test('a model of another architecture is rejected when a config is expected', () => {
  const bytes = encodeModel(attention, initialWeights(attention, 1));
  assertRejects(() => decodeModel(bytes, { expectConfig: unet, source: 'g.fsm' }), /g\.fsm: field arch: architecture mismatch: expected arch="unet".*file has arch="attention-unet"/);
  const wider = makeModelConfig({ ...unet, baseFilters: 8 });
  assertRejects(() => decodeModel(encodeModel(wider, initialWeights(wider, 1)), { expectConfig: unet }), /baseFilters=4.*baseFilters=8/);
  assert.doesNotThrow(() => decodeModel(encodeModel(unet, initialWeights(unet, 1)), { expectConfig: { ...unet, inputShape: [32, 32, 32] } }));
});

test('encoding refuses tensors that do not match the architecture', () => {
  const weights = initialWeights(unet, 1);
  assertRejects(() => encodeModel(unet, weights.slice(1)), /tensors/);
  const renamed = weights.map((t, i) => (i === 2 ? { ...t, name: 'bogus' } : t));
  assertRejects(() => encodeModel(unet, renamed), /"bogus"/);
  const reshaped = weights.map((t, i) => (i === 0 ? { ...t, shape: [3, 3, 3, 3, 5] } : t));
  assertRejects(() => encodeModel(unet, reshaped), /enc0\.conv1\.kernel.*shape/);
  assert.throws(() => encodeModel(attention, weights), FedSegError);
});

test('a header whose manifest is consistent with the hash but not the config is rejected', () => {
  // Forge a file whose manifest lies about a shape but whose SHA-256 is recomputed correctly.
  const bytes = encodeModel(unet, initialWeights(unet, 1));
  const headerLength = new DataView(bytes.buffer).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
  header.tensors.reverse();
  const forged = new TextEncoder().encode(JSON.stringify(header));
  assert.equal(forged.length, headerLength);
  const copy = bytes.slice();
  copy.set(forged, 12);
  copy.set(createHash('sha256').update(copy.subarray(0, copy.length - 32)).digest(), copy.length - 32);
  assertRejects(() => decodeModel(copy), /manifest entry #0/);
});

test('saveModelFile writes atomically and loadModelFile names the file in errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fedseg-weights-'));
  try {
    const path = join(dir, 'model.fsm');
    const weights = initialWeights(unet, 2);
    const sha = await saveModelFile(path, unet, weights, { seed: 2 });
    assert.deepEqual(await readdir(dir), ['model.fsm']);
    const loaded = await loadModelFile(path, { expectConfig: unet });
    assert.equal(loaded.sha256, sha);
    assert.deepEqual(bits(loaded.tensors.at(-1)!.data), bits(weights.at(-1)!.data));

    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(loadModelFile(path), (err: unknown) => err instanceof FedSegError && err.message.includes(path) && /truncated/.test(err.message));
    await assert.rejects(loadModelFile(join(dir, 'missing.fsm')), /missing\.fsm: model file not found/);
    await assert.rejects(saveModelFile(join(dir, 'no-such-dir', 'x.fsm'), unet, weights), FedSegError);
    assert.deepEqual((await readdir(dir)).sort(), ['model.fsm']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('initial weights are deterministic per seed and He-uniform scaled', () => {
  const a = initialWeights(unet, 42);
  const b = initialWeights(unet, 42);
  const c = initialWeights(unet, 43);
  assert.deepEqual(bits(a[0].data), bits(b[0].data));
  assert.notDeepEqual(bits(a[0].data), bits(c[0].data));
  const kernel = a[0]; // 3x3x3x3x4, fanIn 81
  const limit = Math.sqrt(6 / 81);
  assert.ok(kernel.data.every((v) => Math.abs(v) <= limit));
  assert.ok(Math.max(...kernel.data) > limit * 0.8);
  assert.ok(a[1].data.every((v) => v === 0), 'biases start at zero');
});
