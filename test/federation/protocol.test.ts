import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import { decodeFrame, decodeJson, encodeFrame, ServerMessageSchema, SiteMessageSchema } from '../../core/federation/protocol.js';
import { makeModelConfig } from '../../core/model/config.js';
import { parseFederationConfig } from '../../server/config.js';
import { checkUpdateHeader, validateUpdate, type UpdateContext } from '../../core/federation/validate-update.js';

const header = { kind: 'update' as const, round: 3, attempt: 1, architectureHash: 'abc', numCases: 4, metrics: { loss: 0.5 }, trainingSeconds: 2 };

test('binary frames round-trip and reject a wrong prelude, version, header or size', () => {
  const payload = Uint8Array.of(1, 2, 3, 4, 5);
  const frame = encodeFrame(header, payload);
  const back = decodeFrame(frame);
  assert.deepEqual(back.header, header);
  assert.deepEqual([...back.payload], [...payload]);
  assert.throws(() => decodeFrame(Buffer.from('not a frame at all')), /prelude/);
  const wrongVersion = Buffer.from(frame);
  wrongVersion[4] = 9;
  assert.throws(() => decodeFrame(wrongVersion), /version 9/);
  const badHeader = Buffer.from(frame);
  badHeader.writeUInt32LE(1 << 20, 8);
  assert.throws(() => decodeFrame(badHeader), /header length/);
  assert.throws(() => decodeFrame(frame, 10), /exceeds the 10-byte limit/);
  assert.throws(() => encodeFrame({ ...header, metrics: { loss: NaN } }, payload));
});

test('the frame header is padded so the payload starts 8-aligned (model data can be read in place)', () => {
  const variants: Record<string, number>[] = [{}, { a: 1 }, { loss: 0.5, dice: 0.25 }, { l: 1.5, lo: 2, los: 3 }];
  for (const metrics of variants) {
    const frame = encodeFrame({ ...header, metrics }, Uint8Array.of(7));
    assert.equal(frame.length % 8, 1, `payload offset for ${JSON.stringify(metrics)}`);
    assert.deepEqual(decodeFrame(frame).header, { ...header, metrics });
  }
});

test('JSON control messages: not JSON and schema failures are distinct FedSegErrors', () => {
  assert.deepEqual(decodeJson(SiteMessageSchema, '{"type":"approve","round":1,"attempt":1}'), { type: 'approve', round: 1, attempt: 1 });
  assert.throws(() => decodeJson(SiteMessageSchema, '{oops'), (e: FedSegError) => /not JSON/.test(e.message));
  assert.throws(() => decodeJson(SiteMessageSchema, '{"type":"approve","round":-1,"attempt":1}'), /protocol schema/);
  assert.throws(() => decodeJson(SiteMessageSchema, '{"type":"hello","protocol":1,"cases":{"train":1,"validation":0}}'), /token/);
  assert.throws(() => decodeJson(SiteMessageSchema, JSON.stringify({ type: 'ping', t: 1, pad: 'x'.repeat(100) }), 50), /limit/);
});

test('an announce carries a whole, valid model config (ModelConfigSchema), not any record', () => {
  const model = makeModelConfig({ baseFilters: 2, depth: 2, inputShape: [16, 16, 16] });
  const announce = {
    type: 'announce', round: 1, attempt: 1, totalRounds: 2, approvalDeadline: 0, trainingDeadlineS: 60, strategy: 'fedavg', architectureHash: 'h',
    model, instructions: { epochs: 1, learningRate: 0.01, batchSize: 1, mu: 0, seed: 1 }, leavesSite: [], sitesRegistered: 2,
  };
  assert.deepEqual(decodeJson(ServerMessageSchema, JSON.stringify(announce)), announce);
  const broken: [Record<string, unknown>, RegExp][] = [
    [{ ...model, depth: 3 }, /model\.dropout: needs one rate per level \(3\), got 2/],
    [{ ...model, inputShape: [17, 16, 16] }, /model\.inputShape\.0: 17 is not divisible/],
    [{ ...model, extra: 1 }, /Unrecognized key/],
    [{ baseFilters: 2 }, /model\.arch/],
  ];
  for (const [bad, message] of broken) {
    assert.throws(() => decodeJson(ServerMessageSchema, JSON.stringify({ ...announce, model: bad })), message);
  }
});

test('federation.json model: any subset of the fields, each checked, then checked together with the defaults; errors name the field', () => {
  const config = parseFederationConfig({ rounds: 1, model: { arch: 'attention-unet', baseFilters: 4, depth: 3, inputShape: [32, 32, 32] } }, 'federation.json');
  assert.deepEqual(config.modelConfig, makeModelConfig({ arch: 'attention-unet', baseFilters: 4, depth: 3, inputShape: [32, 32, 32] }));
  assert.deepEqual(parseFederationConfig({ rounds: 1 }).modelConfig, makeModelConfig());
  const refused: [Record<string, unknown>, string, RegExp][] = [
    [{ baseFilter: 8 }, 'model', /Unrecognized key: "baseFilter"/],
    [{ depth: 'three' }, 'model.depth', /expected number/],
    [{ arch: 'transformer' }, 'model.arch', /Invalid option/],
    [{ depth: 3, inputShape: [18, 16, 16] }, 'model.inputShape.0', /model: .*18 is not divisible by 2\^\(depth-1\) = 4/],
  ];
  for (const [model, field, message] of refused) {
    assert.throws(() => parseFederationConfig({ rounds: 1, model }, 'federation.json'),
      (err: unknown) => err instanceof FedSegError && err.where.file === 'federation.json' && err.where.field === field && message.test(err.message), JSON.stringify(model));
  }
});

test('update validation: header checks, shapes, finiteness and the norm', () => {
  const global = [{ name: 'w', shape: [2], data: Float32Array.of(0, 0) }];
  const ctx: UpdateContext = { round: 3, attempt: 1, architectureHash: 'abc', global, declaredCases: 4, registeredCases: null, alreadySubmitted: false, participating: true };
  assert.deepEqual(validateUpdate(header, [{ name: 'w', shape: [2], data: Float32Array.of(3, 4) }], 'abc', ctx), { ok: true, norm: 5 });
  const reason = (h = header, w = global, c = ctx) => {
    const v = validateUpdate(h, w, 'abc', c);
    return v.ok ? 'ok' : v.reason;
  };
  assert.match(reason({ ...header, round: 2 }), /round 2/);
  assert.match(reason(header, global, { ...ctx, alreadySubmitted: true }), /duplicate/);
  assert.match(reason(header, global, { ...ctx, participating: false }), /did not approve/);
  assert.match(reason({ ...header, numCases: 5 }), /exceeds/);
  assert.match(reason({ ...header, numCases: 0 }), /positive integer/);
  assert.match(reason(header, [{ name: 'w', shape: [3], data: new Float32Array(3) }]), /wrong shapes/);
  assert.match(reason(header, [{ name: 'w', shape: [2], data: Float32Array.of(NaN, 0) }]), /NaN or Infinity/);
  assert.equal(checkUpdateHeader(header, ctx), null);
});
