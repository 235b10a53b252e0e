/**
 * Secure-aggregation overhead per round at the full-size U-Net (P = 5.6 M parameters), for 5 sites
 * and for 50 simulated sites in one process: CPU per site (keys, shares, encoding, masking,
 * unmasking shares), server CPU (routing, summing the masked inputs, recovering masks, decoding),
 * with no dropout and with one site dropping after the key exchange (the server then regenerates
 * its pairwise masks with every survivor), and bytes per site against the plain float32 update.
 * Checks the result against the exact case-weighted mean, so the timed code is the real thing. The
 * distributed-DP runs time the site's clipping and noise draws too; their check is that the
 * decoded mean differs from the exact mean of the clipped updates by noise of the announced size.
 * CPU time is reported beside wall time: on a shared machine the load inflates wall time.
 */
import { encodeFrame } from '../core/federation/protocol.js';
import { makeModelConfig } from '../core/model/config.js';
import { parameterCount } from '../core/model/parameters.js';
import { siteNoise } from '../core/privacy/dp-aggregation.js';
import { encodeUpdate, errorBound } from '../core/privacy/fixed-point.js';
import { SecAggServer } from '../core/privacy/secagg-server.js';
import { SecAggSite } from '../core/privacy/secagg-site.js';
import { architectureHash } from '../core/weights/index.js';

function cpuMs(fn: () => void): number {
  const c = process.cpuUsage();
  fn();
  const used = process.cpuUsage(c);
  return (used.user + used.system) / 1000;
}

const jsonBytes = (message: unknown) => Buffer.byteLength(JSON.stringify(message));

/** Site k's local weights: global + a small site-dependent pattern, reproducible for the check. */
const delta = (k: number, i: number) => 1e-3 * (((i + k) % 7) - 3);

/** Distributed DP in the bench: clip 1 and noise multiplier 1 (the cost does not depend on them). */
const DP = { clip: 1, noiseMultiplier: 1 };

interface Scenario { sites: number; dropped: number; parameters: number; dp: boolean }

function runScenario({ sites: count, dropped, parameters: P, dp }: Scenario) {
  const names = Array.from({ length: count }, (_, k) => `site-${String(k).padStart(2, '0')}`);
  const cases = names.map((_, k) => 10 + (k % 5));
  const threshold = Math.floor(count / 2) + 1;
  const global = Float32Array.from({ length: P }, (_, i) => Math.sin(i) * 0.1);
  const hash = architectureHash(makeModelConfig());
  const siteCpu = new Float64Array(count);
  const siteSent = new Float64Array(count);
  const siteReceived = new Float64Array(count);
  let serverCpu = 0;
  const wallStart = performance.now();

  const noise = dp ? siteNoise(DP, threshold) : null;
  const server = new SecAggServer(1, 1, threshold, 1, P + 1, noise);
  const sites: SecAggSite[] = [];
  names.forEach((name, k) => {
    siteCpu[k] += cpuMs(() => sites.push(new SecAggSite(name, 1, 1, noise)));
    const keys = { type: 'secagg-keys', round: 1, attempt: 1, ...sites[k].publicKeys() };
    siteSent[k] += jsonBytes(keys);
    serverCpu += cpuMs(() => server.addKeys(name, keys.cPublic, keys.sPublic));
  });
  let roster!: ReturnType<SecAggServer['fixRoster']>;
  serverCpu += cpuMs(() => (roster = server.fixRoster(new Map(names.map((n, k) => [n, cases[k]])))));
  const rosterBytes = jsonBytes({ type: 'secagg-roster', round: 1, attempt: 1, ...roster });
  sites.forEach((site, k) => {
    siteReceived[k] += rosterBytes;
    let shares!: { to: string; ciphertext: string }[];
    siteCpu[k] += cpuMs(() => (shares = site.shareKeys(roster)));
    siteSent[k] += jsonBytes({ type: 'secagg-shares', round: 1, attempt: 1, shares });
    serverCpu += cpuMs(() => server.addShares(site.site, shares));
  });
  let relay!: Map<string, { from: string; ciphertext: string }[]>;
  serverCpu += cpuMs(() => (relay = server.fixMaskingSet()));
  const frameHeader = { kind: 'masked-update' as const, round: 1, attempt: 1, architectureHash: hash, elements: P + 1 };
  let maskedFrameBytes = 0;
  sites.forEach((site, k) => {
    siteReceived[k] += jsonBytes({ type: 'secagg-relay', round: 1, attempt: 1, shares: relay.get(site.site) });
    siteCpu[k] += cpuMs(() => site.receiveShares(relay.get(site.site)!));
    if (k < dropped) return; // trained, then never sent its input
    const local = new Float32Array(P);
    for (let i = 0; i < P; i++) local[i] = global[i] + delta(k, i);
    let masked!: Uint32Array;
    siteCpu[k] += cpuMs(() => (masked = dp ? site.maskedInput(local, global, cases[k], 1) : site.mask(encodeUpdate(local, global, cases[k], roster.encoding).vector)));
    maskedFrameBytes = encodeFrame(frameHeader, new Uint8Array(masked.buffer)).length;
    siteSent[k] += maskedFrameBytes;
    serverCpu += cpuMs(() => server.addMaskedInput(site.site, masked));
  });
  let request!: ReturnType<SecAggServer['unmaskRequest']>;
  serverCpu += cpuMs(() => (request = server.unmaskRequest()));
  sites.forEach((site, k) => {
    if (k < dropped) return;
    siteReceived[k] += jsonBytes({ type: 'secagg-unmask-request', round: 1, attempt: 1, ...request });
    let answer!: ReturnType<SecAggSite['unmask']>;
    siteCpu[k] += cpuMs(() => (answer = site.unmask(request)));
    siteSent[k] += jsonBytes({ type: 'secagg-unmask', round: 1, attempt: 1, ...answer });
    serverCpu += cpuMs(() => server.addUnmaskShares(site.site, answer));
  });
  let result!: ReturnType<SecAggServer['finish']>;
  serverCpu += cpuMs(() => (result = server.finish()));
  const wallS = (performance.now() - wallStart) / 1000;

  // The check, on every 997th coordinate: plain, the exact case-weighted mean of the survivors'
  // updates within the encoding's error bound; with DP, the exact mean of their clipped updates (weight
  // 1 each) plus noise whose std is the sum's sigma C sqrt(n / t) over n.
  const survivors = names.map((_, k) => k).filter((k) => k >= dropped);
  const update = (k: number, i: number) => Math.fround(global[i] + delta(k, i)) - global[i];
  const weight = survivors.map((k) => {
    if (!dp) return cases[k];
    let squares = 0;
    for (let i = 0; i < P; i++) squares += update(k, i) ** 2;
    const clipTo = DP.clip - Math.sqrt(P) * 2 ** -(roster.encoding.fractionBits + 1);
    return Math.min(1, clipTo / Math.sqrt(squares));
  });
  const total = dp ? survivors.length : survivors.reduce((n, k) => n + cases[k], 0);
  let worst = 0;
  let squaredNoise = 0;
  let sampled = 0;
  for (let i = 0; i < P; i += 997) {
    const exact = survivors.reduce((s, k, j) => s + weight[j] * update(k, i), 0) / total;
    const error = result.mean[i] - exact;
    worst = Math.max(worst, Math.abs(error));
    squaredNoise += error * error;
    sampled++;
  }
  if (result.totalCases !== total) throw new Error(`secure sum is wrong: ${result.totalCases} cases (expected ${total})`);
  const noiseStd = Math.sqrt(squaredNoise / sampled);
  const expectedNoiseStd = noise ? (noise.noiseStd * Math.sqrt(survivors.length)) / total : 0;
  if (dp ? Math.abs(noiseStd / expectedNoiseStd - 1) > 0.1 : worst > errorBound(roster.encoding)) {
    throw new Error(`secure sum is wrong: error ${dp ? `std ${noiseStd}, expected ${expectedNoiseStd}` : `${worst} > bound ${errorBound(roster.encoding)}`}`);
  }
  const contributing = survivors.length;
  const mean = (a: Float64Array, from = 0) => a.slice(from).reduce((s, v) => s + v, 0) / (a.length - from);
  return {
    sites: count, threshold, dropped, dp, parameters: P, noiseStd: dp ? noiseStd : null, expectedNoiseStd: dp ? expectedNoiseStd : null,
    siteCpuMs: mean(siteCpu, dropped), serverCpuMs: serverCpu, wallS,
    bytesSentPerSite: mean(siteSent, dropped), bytesReceivedPerSite: mean(siteReceived, dropped),
    plainUpdateBytes: 4 * P, maskedFrameBytes, fractionBits: roster.encoding.fractionBits, errorBound: errorBound(roster.encoding), worstError: worst, contributing,
  };
}

export async function runSecaggBench(options: { quick?: boolean } = {}) {
  const full = parameterCount(makeModelConfig());
  // Quick mode: a tenth of the model; costs scale linearly in P.
  const P = options.quick ? Math.round(full / 10) : full;
  const scenarios: Scenario[] = [false, true].flatMap((dp) => [
    { sites: 5, dropped: 0, parameters: P, dp }, { sites: 5, dropped: 1, parameters: P, dp },
    { sites: 50, dropped: 0, parameters: P, dp }, { sites: 50, dropped: 1, parameters: P, dp },
  ]);
  const results = scenarios.map(runScenario);
  const header = ['DP', 'sites', 't', 'dropped', 'CPU/site (s)', 'server CPU (s)', 'sent/site (MB)', 'recv/site (kB)', 'plain update (MB)', 'f', 'err bound'];
  const rows = results.map((r) => [
    r.dp ? 'distributed' : 'none', String(r.sites), String(r.threshold), String(r.dropped), (r.siteCpuMs / 1000).toFixed(2), (r.serverCpuMs / 1000).toFixed(2),
    (r.bytesSentPerSite / 1e6).toFixed(3), (r.bytesReceivedPerSite / 1e3).toFixed(1), (r.plainUpdateBytes / 1e6).toFixed(3), String(r.fractionBits), r.errorBound.toExponential(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const table = [`P = ${P.toLocaleString('en-US')} parameters${options.quick ? ' (quick: a tenth of the U-Net)' : ' (full-size U-Net)'}`, line(header), ...rows.map(line)].join('\n');
  return { table, json: { name: 'secagg', parameters: P, quick: Boolean(options.quick), results } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { table, json } = await runSecaggBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${table}\n${JSON.stringify(json)}\n`);
}
