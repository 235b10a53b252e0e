/**
 * Secure aggregation over real sockets: in-process site runtimes against a real server, with every
 * message the server receives from a site recorded where the server reads it.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { decodeFrame, type SiteMessage } from '../../core/federation/protocol.js';
import type { TensorList } from '../../core/federation/tensors.js';
import { deriveEncoding, errorBound } from '../../core/privacy/fixed-point.js';
import { decodeModel } from '../../core/weights/index.js';
import { parseFederationConfig } from '../../server/config.js';
import type { SiteConnection } from '../../server/connection.js';
import type { RunningServer } from '../../server/index.js';
import { describeWaiting } from '../../server/waiting.js';
import { outgoingPlan } from '../../site/outgoing.js';
import type { LocalTrainer } from '../../site/runtime.js';
import { api, federationConfig, shiftTrainer, startSite, startTestServer, tempDir, TINY_MODEL } from '../server/helpers.js';
import { byteChiSquare, CHI_SQUARE_255_P1E6 } from './uniformity.js';

const tmp = tempDir('secagg');
after(() => tmp.cleanup());

type Received = { site: string | null; binary: boolean; bytes: Buffer }[];

/** Records every message the server reads from a site connection and every frame a site uploads, as the federation receives them. */
function recordReceived(server: RunningServer): Received {
  const received: Received = [];
  const attach = server.federation.attach.bind(server.federation);
  server.federation.attach = (c: SiteConnection) => {
    c.on('message', (bytes: Buffer, binary: boolean) => received.push({ site: c.site, binary, bytes: Buffer.from(bytes) }));
    attach(c);
  };
  const upload = server.federation.upload.bind(server.federation);
  server.federation.upload = (c, frame) => {
    // A copy: the frame is the upload slot's buffer, reused for the next upload.
    received.push({ site: c.site, binary: true, bytes: Buffer.from(frame) });
    return upload(c, frame);
  };
  return received;
}

interface SiteSpec { name: string; shift: number; cases: number; drop?: 'during-training' | 'after-masked-input' }

/** One round with `sites`; returns the new global model (null if the round did not complete), what the server received, and its audit trail. */
async function runRound(dir: string, sites: SiteSpec[], overrides: Parameters<typeof startTestServer>[1]) {
  const { server, tokens } = await startTestServer(dir, { rounds: 1, maxAttemptsPerRound: 1, ...overrides }, sites.map((s) => s.name), Object.fromEntries(sites.map((s) => [s.name, s.cases])));
  const received = recordReceived(server);
  try {
    const running = sites.map((spec) => {
      const base = shiftTrainer(spec.shift, { train: spec.cases, validation: 1 });
      let stop = () => {};
      const trainer: LocalTrainer = spec.drop === 'during-training'
        ? { ...base, train: async () => { stop(); return new Promise(() => {}); } }
        : base;
      const s = startSite(server, tokens[spec.name], trainer);
      stop = () => s.site.stop();
      if (spec.drop === 'after-masked-input') s.site.on('event', (e) => e.type === 'update-sent' && s.site.stop());
      return s;
    });
    const state = await server.federation.done;
    // A failed federation says nothing more to its sites; a finished one sends them `done`.
    if (state === 'finished') await Promise.all(running.filter((_, k) => !sites[k].drop).map((s) => s.site.done));
    else running.forEach((s) => s.site.stop());
    const { body: rounds } = await api<{ round: number; status: string; reason: string | null }[]>(server, '/api/rounds');
    const completed = rounds.some((r) => r.round === 1 && r.status === 'completed');
    const model = completed ? decodeModel((await api<Uint8Array>(server, '/api/rounds/1/model')).body).tensors : null;
    const { body: start } = await api<Uint8Array>(server, '/api/rounds/0/model');
    return { state, model, start: decodeModel(start).tensors, rounds, received, audit: server.store.auditLog() };
  } finally {
    await server.close();
  }
}

const SECURE = { secureAggregation: { threshold: 3 } };

/** Largest |a - b| over all weights. */
function maxDifference(a: TensorList, b: TensorList): number {
  let worst = 0;
  a.forEach((t, k) => t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[k].data[i])))));
  return worst;
}

/** Float32 rounding of weights below 1 in magnitude (the global and every local model are float32). */
const FLOAT32_SLACK = 2 * 2 ** -24;

/** The exact FedAvg of constant shifts: start + sum(n_k shift_k) / sum(n_k). */
function expectedModel(start: TensorList, sites: SiteSpec[]): TensorList {
  const total = sites.reduce((n, s) => n + s.cases, 0);
  const shift = sites.reduce((acc, s) => acc + s.cases * s.shift, 0) / total;
  return start.map((t) => ({ ...t, data: t.data.map((v) => v + shift) }));
}

const FOUR: SiteSpec[] = [
  { name: 'alpha', shift: 0.01, cases: 2 }, { name: 'beta', shift: -0.02, cases: 3 },
  { name: 'gamma', shift: 0.03, cases: 4 }, { name: 'delta', shift: 0.03, cases: 4 },
];

test('a secure round: the server receives only masked bytes, and the unmasked sum equals plain FedAvg within the fixed-point bound', async () => {
  const plain = await runRound(`${tmp.dir}/plain`, FOUR, { minSites: 4 });
  const secure = await runRound(`${tmp.dir}/secure`, FOUR, { minSites: 4, ...SECURE });
  assert.equal(plain.state, 'finished');
  assert.equal(secure.state, 'finished');
  assert.deepEqual(maxDifference(plain.start, secure.start), 0);
  // W = 13 declared cases at clipRange 1: 27 fractional bits, bound 2^-28 per weight.
  const bound = errorBound(deriveEncoding(1, 13));
  assert.ok(maxDifference(secure.model!, plain.model!) <= bound + 2 * FLOAT32_SLACK, `secure vs plain: ${maxDifference(secure.model!, plain.model!)}`);
  assert.ok(maxDifference(secure.model!, expectedModel(secure.start, FOUR)) <= bound + FLOAT32_SLACK);

  // Every message from a site: only these kinds, progress without loss, and binary frames only masked inputs.
  const fromSites = secure.received.filter((r) => r.site !== null);
  const masked = new Map<string, Uint8Array>();
  for (const r of fromSites) {
    if (r.binary) {
      const { header, payload } = decodeFrame(r.bytes);
      assert.equal(header.kind, 'masked-update', `a ${header.kind} frame reached the server in a secure round`);
      masked.set(r.site!, payload);
      continue;
    }
    const m = JSON.parse(r.bytes.toString('utf8')) as SiteMessage;
    assert.ok(['approve', 'secagg-keys', 'secagg-shares', 'secagg-unmask', 'progress', 'evaluation', 'pong'].includes(m.type), `site sent ${m.type}`);
    if (m.type === 'progress') assert.equal(m.loss, undefined);
  }
  assert.deepEqual([...masked.keys()].sort(), ['alpha', 'beta', 'delta', 'gamma']);
  for (const [site, payload] of masked) {
    assert.ok(byteChiSquare(payload) < CHI_SQUARE_255_P1E6, `${site}: chi-square ${byteChiSquare(payload)} says its bytes are not uniform`);
  }
  // gamma and delta trained to the same update with the same case count: their bytes are unrelated.
  const [g, d] = [masked.get('gamma')!, masked.get('delta')!];
  let equal = 0;
  for (let i = 0; i < g.length; i++) if (g[i] === d[i]) equal++;
  assert.ok(Math.abs(equal - g.length / 256) < 6 * Math.sqrt(g.length / 256), `${equal} of ${g.length} bytes equal`);
  // The plain round, by contrast, carried the update in the clear.
  assert.ok(plain.received.some((r) => r.binary && decodeFrame(r.bytes).header.kind === 'update'));
});

test('sites that drop after the key exchange: one, then two, and the round still gives the survivors\' exact sum', async () => {
  const five: SiteSpec[] = [...FOUR, { name: 'eps', shift: -0.05, cases: 5 }];
  // eps sends its masked input and vanishes before unmasking: its input counts, its self mask comes from the others' shares.
  const one = await runRound(`${tmp.dir}/drop1`, five.map((s) => (s.name === 'eps' ? { ...s, drop: 'after-masked-input' as const } : s)), { minSites: 3, ...SECURE });
  assert.equal(one.state, 'finished');
  const bound = errorBound(deriveEncoding(1, 18));
  assert.ok(maxDifference(one.model!, expectedModel(one.start, five)) <= bound + FLOAT32_SLACK);

  // delta vanishes while training (its pairwise masks are recovered from its key shares), eps after sending.
  const two = await runRound(`${tmp.dir}/drop2`, five.map((s) => (s.name === 'eps' ? { ...s, drop: 'after-masked-input' as const } : s.name === 'delta' ? { ...s, drop: 'during-training' as const } : s)),
    { minSites: 3, trainingDeadlineS: 3, ...SECURE });
  assert.equal(two.state, 'finished');
  const survivors = five.filter((s) => s.name !== 'delta');
  assert.ok(maxDifference(two.model!, expectedModel(two.start, survivors)) <= bound + FLOAT32_SLACK);
  assert.equal(two.received.filter((r) => r.binary).length, 4);
});

test('below the threshold the round aborts before any unmasking share is asked for', async () => {
  const result = await runRound(`${tmp.dir}/abort`, FOUR.map((s) => (s.name === 'alpha' || s.name === 'beta' ? { ...s, drop: 'during-training' as const } : s)),
    { minSites: 2, trainingDeadlineS: 3, ...SECURE });
  assert.equal(result.state, 'failed');
  assert.equal(result.model, null);
  const attempt = result.rounds.find((r) => r.round === 1)!;
  assert.equal(attempt.status, 'abandoned');
  assert.match(attempt.reason ?? '', /2 masked input\(s\) arrived, the secure-aggregation threshold is 3/);
  // The server holds two masked inputs and no share that could open them.
  const texts = result.received.filter((r) => !r.binary).map((r) => (JSON.parse(r.bytes.toString('utf8')) as SiteMessage).type);
  assert.ok(!texts.includes('secagg-unmask'));
  assert.equal(result.received.filter((r) => r.binary).length, 2);
});

test('the approval of a secure round lists a masked update without metrics, and progress without loss', () => {
  const plan = outgoingPlan({ train: 6, validation: 6 }, { update: ['loss'], evaluation: ['dice_WT'] }, 5, true);
  assert.deepEqual(plan.map((m) => [m.message, m.fields, m.withheld]), [
    ['update', ['maskedWeights', 'maskedNumCases'], ['loss']],
    ['progress', ['epoch', 'epochs'], []],
    ['evaluation', ['numCases', 'metrics.dice_WT'], []],
  ]);
});

test('the waiting sentence names the sites a secure round\'s key exchange or unmasking waits for', () => {
  const current = { round: 2, attempt: 1, deadline: '2026-11-28T14:05:30Z', approvals: { a: 'approved', b: 'approved' }, participants: ['a', 'b'], returned: [] };
  const input = { state: 'running', config: { minSites: 2, rounds: 3, retryDelayS: 5 }, registered: ['a', 'b'], online: ['a', 'b'], completedRounds: 1, rejected: [], finalEvaluated: [], lastAttempt: null };
  const keys = describeWaiting({ ...input, current: { ...current, phase: 'key-exchange', secureAwaiting: ['b'] } }, 'UTC');
  assert.deepEqual([keys?.for, keys?.sites, keys?.message], ['key-shares', ['b'], 'waiting for keys and key shares of round 2 (secure aggregation): b (deadline 14:05:30 UTC)']);
  const unmasking = describeWaiting({ ...input, current: { ...current, phase: 'unmasking', secureAwaiting: ['a'] } }, 'UTC');
  assert.equal(unmasking?.for, 'unmasking-shares');
  assert.equal(describeWaiting({ ...input, current: { ...current, phase: 'unmasking', secureAwaiting: [] } }), null);
});

test('a config asking for secure aggregation with a strategy or clipping that needs single updates is refused at load', () => {
  const base = { model: TINY_MODEL, rounds: 1, ...SECURE };
  assert.throws(() => parseFederationConfig({ ...base, strategy: { name: 'median' } }, 'fed.json'), /fed\.json: field strategy\.name: strategy "median" needs every site's update on its own/);
  assert.throws(() => parseFederationConfig({ ...base, strategy: { name: 'trimmed-mean' } }, 'fed.json'), /field strategy\.name: strategy "trimmed-mean"/);
  assert.throws(() => parseFederationConfig({ ...base, clipping: { medianMultiplier: 3, maxRelativeNorm: 10 } }, 'fed.json'), /field clipping: server-side clipping needs each update's norm/);
  assert.throws(() => parseFederationConfig({ ...base, secureAggregation: { threshold: 1 } }), /secureAggregation\.threshold/);
  // DP with it: the sites add the noise (distributed), and no server noise seed applies.
  assert.throws(() => parseFederationConfig({ ...base, privacy: { ...DISTRIBUTED, mode: 'central' } }, 'fed.json'), /field privacy\.mode: privacy\.mode must be "distributed" with secureAggregation/);
  assert.throws(() => parseFederationConfig({ ...base, privacy: { ...DISTRIBUTED, noiseSeed: 3 } }, 'fed.json'), /field privacy\.noiseSeed: .*the server adds none/);
  assert.throws(() => parseFederationConfig({ ...base, strategy: { name: 'median' }, privacy: DISTRIBUTED }, 'fed.json'), /field strategy\.name/);
  assert.equal(parseFederationConfig({ ...base, privacy: DISTRIBUTED }).privacy?.mode, 'distributed');
  for (const name of ['fedavg', 'fedprox', 'fedavgm', 'fedadam', 'fedyogi'] as const) assert.equal(federationConfig({ ...SECURE, strategy: { name } }).strategy.name, name);
});

test('FedAdam acts on the securely aggregated mean exactly as on the plain one', async () => {
  const strategy = { name: 'fedadam' as const, eta: 0.05, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
  const plain = await runRound(`${tmp.dir}/adam-plain`, FOUR, { minSites: 4, strategy });
  const secure = await runRound(`${tmp.dir}/adam-secure`, FOUR, { minSites: 4, strategy, ...SECURE });
  assert.deepEqual([plain.state, secure.state], ['finished', 'finished']);
  // Adam's step divides by sqrt(v) + tau, so a mean off by the bound moves the step by at most eta * bound / tau.
  const bound = errorBound(deriveEncoding(1, 13));
  assert.ok(maxDifference(secure.model!, plain.model!) <= (0.05 * bound) / 1e-3 + 4 * FLOAT32_SLACK, `${maxDifference(secure.model!, plain.model!)}`);
});

/** Distributed DP: sigma C = 0.15 at the sum when exactly t = 3 inputs are unmasked; a budget that never binds. */
const DISTRIBUTED = { clip: 0.5, noiseMultiplier: 0.3, mode: 'distributed' as const, budget: { epsilon: 1e6, delta: 1e-5 } };

/**
 * The round's model minus the equal-weight mean of the sites' clipped updates (constant shifts, so
 * clip_C(shift) is shift scaled to norm C) over the fixed denominator D: what is left is the noise / D.
 */
function noiseLeft(result: Awaited<ReturnType<typeof runRound>>, survivors: SiteSpec[], denominator: number): number[] {
  const parameters = result.start.reduce((n, t) => n + t.data.length, 0);
  const signal = survivors.reduce((acc, s) => acc + s.shift * Math.min(1, DISTRIBUTED.clip / (Math.abs(s.shift) * Math.sqrt(parameters))), 0) / denominator;
  return result.model!.flatMap((t, k) => [...t.data].map((v, i) => v - result.start[k].data[i] - signal));
}

/**
 * The empirical mean and variance of `values` against N(0, variance): within 4.5 standard errors
 * (the variance's relative standard error is sqrt(2 / P)), a false alarm about once in 10^5 runs.
 */
function assertNoise(values: number[], variance: number, what: string): void {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const empirical = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  assert.ok(Math.abs(mean) < 4.5 * Math.sqrt(variance / n), `${what}: noise mean ${mean}, expected 0 within ${4.5 * Math.sqrt(variance / n)}`);
  assert.ok(Math.abs(empirical / variance - 1) < 4.5 * Math.sqrt(2 / n), `${what}: noise variance ${empirical}, expected ${variance} (ratio ${empirical / variance})`);
}

test('distributed DP under secure aggregation: the unmasked aggregate is the clipped equal-weight sum over D plus the sites\' noise, sigma^2 C^2 survivors/t in all', async () => {
  const result = await runRound(`${tmp.dir}/dp`, FOUR, { minSites: 3, privacy: DISTRIBUTED, ...SECURE });
  assert.equal(result.state, 'finished');
  // Four survivors of threshold 3 each added sigma^2 C^2 / 3: the sum carries 4/3 of sigma^2 C^2, divided by D = 4 registered sites.
  const { clip, noiseMultiplier } = DISTRIBUTED;
  assertNoise(noiseLeft(result, FOUR, 4), ((noiseMultiplier * clip) ** 2 * 4) / 3 / 4 ** 2, 'four survivors');
  // Only masked frames reached the server, and it audited the privacy spent with the noise on the average.
  assert.ok(result.received.filter((r) => r.binary).every((r) => decodeFrame(r.bytes).header.kind === 'masked-update'));
  const spent = result.audit.find((a) => a.action === 'privacy-spent');
  assert.ok(spent, 'no privacy-spent audit entry');
  const detail = JSON.parse(spent.detail ?? '{}') as { updates: number; denominator: number; noiseStd: number; clipped?: number };
  assert.deepEqual([detail.updates, detail.denominator, detail.clipped], [4, 4, undefined]);
  assert.ok(Math.abs(detail.noiseStd - (noiseMultiplier * clip * Math.sqrt(4 / 3)) / 4) < 1e-12);
});

test('distributed DP: a site dropping during training leaves the survivors\' clipped sum over the fixed D, with survivors/t of the noise', async () => {
  const five: SiteSpec[] = [...FOUR, { name: 'eps', shift: -0.05, cases: 5 }];
  const result = await runRound(`${tmp.dir}/dp-drop`, five.map((s) => (s.name === 'delta' ? { ...s, drop: 'during-training' as const } : s)),
    { minSites: 3, trainingDeadlineS: 3, privacy: DISTRIBUTED, ...SECURE });
  assert.equal(result.state, 'finished');
  const { clip, noiseMultiplier } = DISTRIBUTED;
  // D stays the 5 registered sites: the dropped site shrinks the step instead of changing the denominator.
  assertNoise(noiseLeft(result, five.filter((s) => s.name !== 'delta'), 5), ((noiseMultiplier * clip) ** 2 * 4) / 3 / 5 ** 2, 'four survivors of five');
});
