import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeSum, deriveEncoding, encodeNoisedUpdate, encodeUpdate, errorBound, OVERFLOW_SIGMAS } from '../../core/privacy/fixed-point.js';
import { GaussianStream } from '../../core/privacy/gaussian-noise.js';
import { SecAggAbort, SecAggServer } from '../../core/privacy/secagg-server.js';
import { SecAggSite } from '../../core/privacy/secagg-site.js';
import { combineShares, lagrangeAtZero, splitSecret } from '../../core/privacy/shamir.js';
import { Mulberry32 } from '../../core/random.js';
import { byteChiSquare, CHI_SQUARE_255_P1E6 } from './uniformity.js';

test('Shamir: any threshold shares recover the secret, fewer do not', () => {
  const secret = randomBytes(32);
  const shares = splitSecret(secret, [1, 2, 3, 4, 5], 3);
  for (const pick of [[0, 1, 2], [1, 3, 4], [0, 2, 4], [0, 1, 2, 3, 4]]) {
    const chosen = pick.map((i) => shares[i]);
    assert.deepEqual(Buffer.from(combineShares(chosen.map((s) => s.y), lagrangeAtZero(chosen.map((s) => s.x)))), secret);
  }
  // Two shares interpolate a line through a random point: almost surely not even a 32-byte value.
  const two = shares.slice(0, 2);
  let guess: Buffer | null = null;
  try {
    guess = Buffer.from(combineShares(two.map((s) => s.y), lagrangeAtZero(two.map((s) => s.x))));
  } catch (err) {
    assert.match((err as Error).message, /do not combine to a 32-byte secret/);
  }
  if (guess) assert.notDeepEqual(guess, secret);
});

test('fixed point: the derived precision keeps the mean within the stated bound and the sum from wrapping', () => {
  const encoding = deriveEncoding(0.5, 40);
  assert.equal(encoding.fractionBits, 26); // floor(log2((2^31 - 41) / 20))
  const rng = new Mulberry32(7);
  const global = Float32Array.from({ length: 1000 }, () => rng.next() - 0.5);
  const cases = [10, 20, 10];
  // Extreme updates at +-clipRange stress the range; the rest random.
  const locals = cases.map((_, k) => Float32Array.from(global, (g, i) => g + (i < 10 ? (k % 2 ? -0.5 : 0.5) : (rng.next() - 0.5) * 0.2)));
  const sum = new Uint32Array(global.length + 1);
  for (let k = 0; k < cases.length; k++) {
    const { vector } = encodeUpdate(locals[k], global, cases[k], encoding);
    for (let i = 0; i < sum.length; i++) sum[i] += vector[i];
  }
  const { mean, totalCases } = decodeSum(sum, cases.length, encoding);
  assert.equal(totalCases, 40);
  let worst = 0;
  for (let i = 0; i < global.length; i++) {
    const exact = cases.reduce((s, n, k) => s + n * Math.max(-0.5, Math.min(0.5, locals[k][i] - global[i])), 0) / 40;
    worst = Math.max(worst, Math.abs(mean[i] - exact));
  }
  assert.ok(worst <= errorBound(encoding), `error ${worst} above bound ${errorBound(encoding)}`);
  assert.ok(worst > 0);
  // Clamped, not wrapped: a coordinate far beyond the range decodes to the range.
  const { vector, clamped } = encodeUpdate(Float32Array.of(100, -100), Float32Array.of(0, 0), 1, encoding);
  assert.equal(clamped, 2);
  const back = decodeSum(vector, 1, encoding).mean;
  assert.ok(Math.abs(back[0] - 0.5) <= errorBound(encoding) && Math.abs(back[1] + 0.5) <= errorBound(encoding));
  assert.throws(() => deriveEncoding(1e6, 10_000), /fractional bits.*lower clipRange/);
});

interface Simulated { sums: { mean: Float64Array; totalCases: number; sites: string[] }; masked: Map<string, Uint32Array>; expected: Float64Array; bound: number }

/** Runs the four rounds in memory; `dropBeforeMasking` never send their input, `dropBeforeUnmasking` send it and then vanish. */
function simulate(args: { sites: number; threshold: number; length: number; dropBeforeMasking?: number[]; dropBeforeUnmasking?: number[]; sameUpdate?: boolean; answer?: boolean }) {
  const names = Array.from({ length: args.sites }, (_, k) => `site-${k}`);
  const cases = names.map((_, k) => 3 + k);
  const rng = new Mulberry32(11);
  const global = Float32Array.from({ length: args.length }, () => rng.next() - 0.5);
  const locals = names.map(() => Float32Array.from(global, (g) => g + (args.sameUpdate ? 0.01 : (rng.next() - 0.5) * 0.1)));
  const server = new SecAggServer(4, 1, args.threshold, 1, args.length + 1);
  const sites = names.map((n) => new SecAggSite(n, 4, 1));
  sites.forEach((s) => { const k = s.publicKeys(); server.addKeys(s.site, k.cPublic, k.sPublic); });
  const roster = server.fixRoster(new Map(names.map((n, k) => [n, cases[k]])));
  sites.forEach((s) => server.addShares(s.site, s.shareKeys(roster)));
  const relay = server.fixMaskingSet();
  sites.forEach((s) => s.receiveShares(relay.get(s.site)!));
  const masked = new Map<string, Uint32Array>();
  sites.forEach((s, k) => {
    if (args.dropBeforeMasking?.includes(k)) return;
    const y = s.mask(encodeUpdate(locals[k], global, cases[k], roster.encoding).vector);
    masked.set(s.site, Uint32Array.from(y));
    server.addMaskedInput(s.site, y);
  });
  const request = server.unmaskRequest();
  sites.forEach((s, k) => {
    if (args.answer === false || args.dropBeforeMasking?.includes(k) || args.dropBeforeUnmasking?.includes(k)) return;
    server.addUnmaskShares(s.site, s.unmask(request));
  });
  const contributing = names.map((_, k) => k).filter((k) => !args.dropBeforeMasking?.includes(k));
  const total = contributing.reduce((n, k) => n + cases[k], 0);
  const expected = Float64Array.from(global, (g, i) => contributing.reduce((s, k) => s + cases[k] * (locals[k][i] - g), 0) / total);
  return { server, sites, request, run: (): Simulated => ({ sums: server.finish(), masked, expected, bound: errorBound(roster.encoding) }) };
}

function assertClose(result: Simulated) {
  let worst = 0;
  result.expected.forEach((e, i) => (worst = Math.max(worst, Math.abs(result.sums.mean[i] - e))));
  assert.ok(worst <= result.bound, `error ${worst} above bound ${result.bound}`);
}

test('secure aggregation: the unmasked sum is the case-weighted mean, with none, one or two sites dropping', () => {
  const all = simulate({ sites: 5, threshold: 3, length: 2000 }).run();
  assertClose(all);
  assert.equal(all.sums.totalCases, 3 + 4 + 5 + 6 + 7);
  const oneBefore = simulate({ sites: 5, threshold: 3, length: 2000, dropBeforeMasking: [2] }).run();
  assertClose(oneBefore);
  assert.deepEqual(oneBefore.sums.sites, ['site-0', 'site-1', 'site-3', 'site-4']);
  assertClose(simulate({ sites: 5, threshold: 3, length: 2000, dropBeforeMasking: [0, 4] }).run());
  // Sent their masked input, then vanished: their self masks come back from the others' shares.
  assertClose(simulate({ sites: 5, threshold: 3, length: 2000, dropBeforeUnmasking: [1, 3] }).run());
  assertClose(simulate({ sites: 5, threshold: 3, length: 2000, dropBeforeMasking: [0], dropBeforeUnmasking: [4] }).run());
});

test('secure aggregation: masked inputs look uniform, and equal updates give unrelated bytes', () => {
  const { masked } = simulate({ sites: 3, threshold: 2, length: 50_000, sameUpdate: true }).run();
  const [a, b] = [...masked.values()].map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  assert.ok(byteChiSquare(a) < CHI_SQUARE_255_P1E6, `chi-square ${byteChiSquare(a)}`);
  let equal = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) equal++;
  // Unrelated bytes agree 1/256 of the time: 781 of 200 004 expected, sd ~28.
  assert.ok(Math.abs(equal - a.length / 256) < 6 * Math.sqrt(a.length / 256), `${equal} equal bytes`);
});

test('secure aggregation aborts below the threshold at every step, and sites refuse requests that would expose an input', () => {
  // Too few masked inputs: the server aborts before asking anyone for shares.
  const few = simulate({ sites: 4, threshold: 3, length: 10, dropBeforeMasking: [0] });
  assert.equal(few.request.survivors.length, 3);
  assert.throws(() => simulate({ sites: 4, threshold: 3, length: 10, dropBeforeMasking: [0, 1] }), SecAggAbort);
  // Too few unmasking answers: finish refuses.
  assert.throws(() => simulate({ sites: 4, threshold: 3, length: 10, dropBeforeUnmasking: [0, 1] }).run(), SecAggAbort);
  const server = new SecAggServer(1, 1, 3, 1, 5);
  const s = new SecAggSite('a', 1, 1);
  server.addKeys('a', s.publicKeys().cPublic, s.publicKeys().sPublic);
  assert.throws(() => server.fixRoster(new Map([['a', 2], ['b', 2]])), /1 site\(s\) advertised keys, the secure-aggregation threshold is 3/);

  // A server that lies: fewer survivors than the threshold, a set that does not split U2, or a second request.
  const { sites, request } = simulate({ sites: 4, threshold: 3, length: 10, answer: false });
  const site = sites[0];
  assert.throws(() => site.unmask({ survivors: ['site-0', 'site-1'], dropped: ['site-2', 'site-3'] }), /below the threshold/);
  assert.throws(() => site.unmask({ survivors: ['site-0', 'site-1', 'site-2'], dropped: [] }), /do not split/);
  assert.throws(() => site.unmask({ survivors: ['site-1', 'site-2', 'site-3'], dropped: ['site-0'] }), /listed as dropped/);
  const answer = site.unmask(request);
  assert.deepEqual(site.unmask({ survivors: [...request.survivors].reverse(), dropped: request.dropped }), answer, 'the same request again (a reconnect) gets the same answer');
  assert.throws(() => site.unmask({ survivors: ['site-0', 'site-1', 'site-2'], dropped: ['site-3'] }), /second time in the same round, with other survivors/);
});

test('share envelopes are bound to sender, recipient and round', () => {
  const names = ['a', 'b', 'c'];
  const server = new SecAggServer(2, 1, 2, 1, 5);
  const sites = names.map((n) => new SecAggSite(n, 2, 1));
  sites.forEach((s) => server.addKeys(s.site, s.publicKeys().cPublic, s.publicKeys().sPublic));
  const roster = server.fixRoster(new Map(names.map((n) => [n, 1])));
  const out = sites.map((s) => s.shareKeys(roster));
  // a's envelope for c handed to b as if from a: it does not open.
  const forC = out[0].find((e) => e.to === 'c')!;
  assert.throws(() => sites[1].receiveShares([{ from: 'a', ciphertext: forC.ciphertext }]), /does not authenticate/);
  assert.throws(() => server.addShares('a', out[0].slice(1)), /one envelope to each other roster site/);
});

test('distributed DP encoding: the range covers the noise, the encoded update is within the clip after rounding, and the noise is the stream\'s, rounded', () => {
  // 5 sites of weight 1, B' = min(B, C) = 0.5, 10 sigma of the summed noise: (5 x 0.5 + 10 x 0.2 x sqrt(5)) 2^f + 5 < 2^31.
  const dp = { clip: 0.5, noiseStd: 0.2 };
  const encoding = deriveEncoding(1, 5, dp);
  assert.equal(OVERFLOW_SIGMAS, 10);
  assert.equal(encoding.fractionBits, Math.floor(Math.log2((2 ** 31 - 6) / (5 * 0.5 + 10 * 0.2 * Math.sqrt(5)))));
  assert.deepEqual(encoding.dp, dp);
  assert.throws(() => encodeUpdate(Float32Array.of(1), Float32Array.of(0), 1, encoding), /encodeNoisedUpdate/);

  // Without noise the vector is the clipped update on the grid: norm at most C, and within the grid margin of it.
  const length = 10_000;
  const global = new Float32Array(length);
  const local = Float32Array.from({ length }, (_, i) => Math.sin(i));
  const quiet = deriveEncoding(1, 5, { clip: 0.5, noiseStd: 0 });
  const unit = 2 ** quiet.fractionBits;
  const plain = encodeNoisedUpdate(local, global, quiet, new GaussianStream(new Uint8Array(32)));
  assert.equal(plain.vector[length], 1, 'every site weighs 1');
  assert.ok(Math.abs(plain.norm - Math.hypot(...local)) < 1e-9);
  const decoded = decodeSum(plain.vector, 1, quiet).mean;
  const norm = Math.hypot(...decoded);
  assert.ok(norm <= 0.5 && norm > 0.5 - 2 * Math.sqrt(length) / unit, `encoded norm ${norm}`);

  // With noise: the vector is the grid update plus each normal draw rounded on its own.
  const key = new Uint8Array(32).fill(7);
  const noised = encodeNoisedUpdate(local, global, encoding, new GaussianStream(key));
  const draws = new Float64Array(length);
  new GaussianStream(key).addTo(draws, dp.noiseStd);
  const scale = 2 ** encoding.fractionBits;
  const grid = encodeNoisedUpdate(local, global, { ...encoding, dp: { ...dp, noiseStd: 0 } }, new GaussianStream(key)).vector;
  for (let i = 0; i < length; i += 97) assert.equal(noised.vector[i], (grid[i] + Math.round(draws[i] * scale)) >>> 0);
  // A sum that is not exactly one weight per survivor does not decode.
  assert.throws(() => decodeSum(noised.vector, 2, encoding), /not the 2 survivors of a distributed-DP round/);
});

test('a site refuses a roster whose encoding carries other DP noise than the round announced', () => {
  const names = ['a', 'b', 'c'];
  const dp = { clip: 1, noiseStd: 0.5 };
  const roster = (serverDp: typeof dp | null, siteDp: typeof dp | null) => {
    const server = new SecAggServer(3, 1, 2, 1, 5, serverDp);
    const sites = names.map((n) => new SecAggSite(n, 3, 1, siteDp));
    sites.forEach((s) => server.addKeys(s.site, s.publicKeys().cPublic, s.publicKeys().sPublic));
    return { sites, roster: server.fixRoster(new Map(names.map((n) => [n, 4]))) };
  };
  const honest = roster(dp, dp);
  assert.equal(honest.roster.encoding.maxTotalCases, 3, 'weights 1: W is the roster size, not the 12 cases');
  honest.sites.forEach((s) => s.shareKeys(honest.roster));
  const lessNoise = roster({ clip: 1, noiseStd: 0.1 }, dp);
  assert.throws(() => lessNoise.sites[0].shareKeys(lessNoise.roster), /encoding has clip 1, noise std 0\.1, the round was announced with clip 1, noise std 0\.5/);
  const none = roster(null, dp);
  assert.throws(() => none.sites[0].shareKeys(none.roster), /encoding has no DP noise/);
});
