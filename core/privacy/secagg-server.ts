/**
 * The server's side of one secure-aggregation round: collects public keys (U1), routes sealed
 * share envelopes (U2), sums masked inputs as they arrive (U3) and, given `threshold` unmasking
 * answers, recovers the self masks of the survivors and the pairwise masks of the dropped, leaving
 * exactly the sum of the survivors' inputs. Pure. Below the threshold at any step it throws a
 * SecAggAbort and holds nothing but masked data it cannot open.
 */
import { FedSegError } from '../errors.js';
import type { SecAggRoster, SecAggUnmask, SecAggUnmaskRequest } from '../federation/protocol.js';
import { decodeSum, deriveEncoding, type FixedPointEncoding, type SiteNoise } from './fixed-point.js';
import { agreeKey, publicKeyOf } from './key-agreement.js';
import { applyMask } from './prg.js';
import { pairSign, secAggContext, type RosterEntry } from './secagg-site.js';
import { combineShares, lagrangeAtZero } from './shamir.js';

/** The threshold `fedseg demo` and `fedseg experiment` use: half the sites (the demo's quorum), at least 2. */
export function halfThreshold(sites: number): number {
  return Math.max(2, Math.ceil(sites / 2));
}

/** Too few sites remain for the step: the round must end without unmasking anything. */
export class SecAggAbort extends FedSegError {}

export class SecAggServer {
  private readonly context: string;
  private readonly keys = new Map<string, RosterEntry>();
  private roster: RosterEntry[] | null = null;
  encoding: FixedPointEncoding | null = null;
  /** Envelopes by recipient, then sender. */
  private readonly envelopes = new Map<string, Map<string, string>>();
  private maskingSet: string[] | null = null;
  private sum: Uint32Array | null = null;
  private readonly maskedFrom = new Set<string>();
  private request: { survivors: string[]; dropped: string[] } | null = null;
  private readonly answers = new Map<string, Omit<SecAggUnmask, 'type' | 'round' | 'attempt'>>();

  /** `dp`: a distributed-DP round, in which every site weighs 1 and adds its share of the noise (fixed-point.ts). */
  constructor(readonly round: number, readonly attempt: number, readonly threshold: number, readonly clipRange: number, readonly elements: number, readonly dp: SiteNoise | null = null) {
    if (!Number.isInteger(threshold) || threshold < 2) throw new FedSegError(`secure aggregation threshold must be an integer >= 2, got ${threshold}`, { field: 'secureAggregation.threshold' });
    this.context = secAggContext(round, attempt);
  }

  get maskingSites(): readonly string[] {
    return this.maskingSet ?? [];
  }

  get survivors(): readonly string[] {
    return [...this.maskedFrom].sort();
  }

  /** Round 0: a site's advertised keys (before the roster is fixed). */
  addKeys(site: string, cPublic: string, sPublic: string): void {
    if (this.roster) throw new FedSegError(`keys from ${site} arrived after the roster was fixed`, { field: 'secagg-keys' });
    if (this.keys.has(site)) throw new FedSegError(`${site} already advertised keys this round`, { field: 'secagg-keys' });
    this.keys.set(site, { site, cPublic, sPublic });
  }

  /** U1 once fixed, else null. */
  get rosterSites(): readonly string[] | null {
    return this.roster?.map((e) => e.site) ?? null;
  }

  hasKeys(site: string): boolean {
    return this.keys.has(site);
  }

  /** Fixes U1 to the `sites` that advertised keys; the encoding fits their declared case counts (or, under DP, their number and noise). */
  fixRoster(sites: ReadonlyMap<string, number>): Omit<SecAggRoster, 'type' | 'round' | 'attempt'> {
    const entries = [...sites.keys()].filter((s) => this.keys.has(s)).sort().map((s) => this.keys.get(s)!);
    if (entries.length < this.threshold) throw new SecAggAbort(`${entries.length} site(s) advertised keys, the secure-aggregation threshold is ${this.threshold}`);
    this.roster = entries;
    const totalWeight = this.dp ? entries.length : entries.reduce((n, e) => n + (sites.get(e.site) ?? 0), 0);
    this.encoding = deriveEncoding(this.clipRange, totalWeight, this.dp ?? undefined);
    return { threshold: this.threshold, sites: entries, encoding: this.encoding };
  }

  /** Round 1: one envelope for every other roster site, once. */
  addShares(site: string, shares: readonly { to: string; ciphertext: string }[]): void {
    const roster = this.roster ?? fail('shares arrived before the roster');
    if (this.maskingSet) fail(`shares from ${site} arrived after the masking set was fixed`);
    if (!roster.some((e) => e.site === site)) fail(`${site} is not on the roster`);
    if (this.sentShares(site)) fail(`${site} already sent its shares`);
    const expected = roster.map((e) => e.site).filter((s) => s !== site);
    const to = shares.map((s) => s.to).sort();
    if (to.length !== expected.length || to.some((s, i) => s !== expected[i])) fail(`${site} must send one envelope to each other roster site`);
    for (const { to: recipient, ciphertext } of shares) {
      if (!this.envelopes.has(recipient)) this.envelopes.set(recipient, new Map());
      this.envelopes.get(recipient)!.set(site, ciphertext);
    }
  }

  sentShares(site: string): boolean {
    return [...this.envelopes.values()].some((bySender) => bySender.has(site));
  }

  /** Fixes U2 (the sites that sent shares) and returns each one's relay: the envelopes other U2 sites sealed for it. */
  fixMaskingSet(): Map<string, { from: string; ciphertext: string }[]> {
    const roster = this.roster ?? fail('no roster');
    const sent = new Set([...this.envelopes.values()].flatMap((bySender) => [...bySender.keys()]));
    // A one-site roster sends no envelopes; it never gets this far (threshold >= 2).
    const set = roster.map((e) => e.site).filter((s) => sent.has(s));
    if (set.length < this.threshold) throw new SecAggAbort(`${set.length} site(s) shared their keys, the secure-aggregation threshold is ${this.threshold}`);
    this.maskingSet = set;
    return new Map(set.map((site) => [site, set.filter((s) => s !== site).map((from) => ({ from, ciphertext: this.envelopes.get(site)!.get(from)! }))]));
  }

  /** Round 2: adds a masked input to the running sum (the input itself is not kept). */
  addMaskedInput(site: string, input: Uint32Array): void {
    const set = this.maskingSet ?? fail('a masked input arrived before the masking set was fixed');
    if (this.request) fail(`the masked input from ${site} arrived after unmasking began`);
    if (!set.includes(site)) fail(`${site} is not in the masking set`);
    if (this.maskedFrom.has(site)) fail(`${site} already sent its masked input`);
    if (input.length !== this.elements) fail(`the masked input from ${site} has ${input.length} elements, expected ${this.elements}`);
    this.sum ??= new Uint32Array(this.elements);
    const sum = this.sum;
    for (let i = 0; i < sum.length; i++) sum[i] += input[i];
    this.maskedFrom.add(site);
  }

  /** Fixes U3 (the sites whose masked input arrived) and returns the unmasking request. */
  unmaskRequest(): Pick<SecAggUnmaskRequest, 'survivors' | 'dropped'> {
    const set = this.maskingSet ?? fail('no masking set');
    const survivors = set.filter((s) => this.maskedFrom.has(s));
    if (survivors.length < this.threshold) throw new SecAggAbort(`${survivors.length} masked input(s) arrived, the secure-aggregation threshold is ${this.threshold}`);
    this.request = { survivors, dropped: set.filter((s) => !this.maskedFrom.has(s)) };
    return this.request;
  }

  /** The unmasking request once made, for a survivor that reconnected after it was sent. */
  get unmasking(): Pick<SecAggUnmaskRequest, 'survivors' | 'dropped'> | null {
    return this.request;
  }

  /** Round 3: one survivor's shares, exactly the survivors' self-mask shares and the dropped sites' key shares. */
  addUnmaskShares(site: string, answer: Omit<SecAggUnmask, 'type' | 'round' | 'attempt'>): void {
    const request = this.request ?? fail('unmasking shares arrived before they were asked for');
    if (!request.survivors.includes(site)) fail(`${site} was not asked for unmasking shares`);
    if (this.answers.has(site)) fail(`${site} already sent its unmasking shares`);
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().every((s, i) => s === b[i]);
    if (!same(answer.selfMaskShares.map((s) => s.of), request.survivors) || !same(answer.keyShares.map((s) => s.of), request.dropped)) {
      fail(`${site}'s unmasking shares do not cover exactly the survivors and the dropped sites`);
    }
    this.answers.set(site, answer);
  }

  answered(site: string): boolean {
    return this.answers.has(site);
  }

  get unmaskAnswers(): number {
    return this.answers.size;
  }

  /** With `threshold` answers: removes every mask and decodes the case-weighted mean update and total case count. */
  finish(): { mean: Float64Array; totalCases: number; sites: string[] } {
    const request = this.request ?? fail('finish before unmasking');
    const roster = this.roster!;
    const sum = this.sum!;
    const holders = [...this.answers.keys()].sort().slice(0, this.threshold);
    if (holders.length < this.threshold) throw new SecAggAbort(`${this.answers.size} site(s) sent unmasking shares, the secure-aggregation threshold is ${this.threshold}`);
    const index = (site: string) => roster.findIndex((e) => e.site === site) + 1;
    const coefficients = lagrangeAtZero(holders.map(index));
    const recover = (of: string, kind: 'selfMaskShares' | 'keyShares') =>
      combineShares(holders.map((h) => this.answers.get(h)![kind].find((s) => s.of === of)!.share), coefficients);
    for (const site of request.survivors) applyMask(sum, recover(site, 'selfMaskShares'), -1);
    for (const gone of request.dropped) {
      const key = recover(gone, 'keyShares');
      const entry = roster.find((e) => e.site === gone)!;
      if (publicKeyOf(key) !== entry.sPublic) fail(`the mask key recovered for ${gone} does not match its public key (corrupt shares)`);
      // Each survivor added pairSign(survivor, gone) * PRG(seed of the pair); take it back out.
      for (const site of request.survivors) {
        const peer = roster.find((e) => e.site === site)!;
        applyMask(sum, agreeKey(key, peer.sPublic, this.context, 'mask'), pairSign(site, gone) === 1 ? -1 : 1);
      }
    }
    const decoded = decodeSum(sum, request.survivors.length, this.encoding!);
    return { ...decoded, sites: request.survivors };
  }
}

function fail(message: string): never {
  throw new FedSegError(`secure aggregation: ${message}`, { field: 'secagg' });
}
