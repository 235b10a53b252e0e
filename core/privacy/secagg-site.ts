/**
 * A site's side of one secure-aggregation round (Bonawitz et al., CCS 2017, semi-honest variant):
 * fresh key pairs and self-mask seed per round, Shamir shares of the mask private key and the seed
 * sealed for the other sites, the masked input, and the unmasking shares. Pure: the caller carries
 * the messages. Every step checks what the server sent, and the site answers one unmasking
 * request per round, so the server can never obtain both a site's self-mask seed and its mask key.
 */
import { randomBytes } from 'node:crypto';
import { FedSegError } from '../errors.js';
import type { SecAggRoster, SecAggUnmask, SecAggUnmaskRequest } from '../federation/protocol.js';
import { checkEncoding, encodeNoisedUpdate, encodeUpdate, type FixedPointEncoding, type SiteNoise } from './fixed-point.js';
import { GaussianStream, siteNoiseKey } from './gaussian-noise.js';
import { agreeKey, checkPublicKey, generateKeyPair, type KeyPair } from './key-agreement.js';
import { applyMask } from './prg.js';
import { openEnvelope, sealEnvelope } from './share-envelope.js';
import { splitSecret, type Share } from './shamir.js';

export type RosterEntry = SecAggRoster['sites'][number];

/** Binds keys, masks and envelopes to one round attempt. */
export function secAggContext(round: number, attempt: number): string {
  return `fedseg-secagg-v1 round ${round} attempt ${attempt}`;
}

/** +1 when `a` adds the pair's mask, -1 when it subtracts it (by site order), so each pair cancels. */
export function pairSign(a: string, b: string): 1 | -1 {
  return a < b ? 1 : -1;
}

/** Plaintext of a share envelope: the sender's shares for the recipient's index. */
interface EnvelopeBody {
  x: number;
  keyShare: string;
  selfMaskShare: string;
}

function fail(message: string, field?: string): never {
  throw new FedSegError(`secure aggregation: ${message}`, { field });
}

export class SecAggSite {
  private readonly context: string;
  /** Seals share envelopes (c) and agrees pairwise mask seeds (s): separate so revealing s of a dropped site exposes no envelope. */
  private readonly c: KeyPair = generateKeyPair();
  private readonly s: KeyPair = generateKeyPair();
  private readonly selfSeed = randomBytes(32);
  private roster: RosterEntry[] | null = null;
  private threshold = 0;
  encoding: FixedPointEncoding | null = null;
  /** Shares this site holds, by owner (itself included), of each owner's s private key and self-mask seed. */
  private readonly held = new Map<string, EnvelopeBody>();
  /** U2: the sites whose shares arrived (this one included), the set masks are agreed with. */
  private maskingSet: string[] | null = null;
  private maskedInputSent = false;
  /** The one unmasking request answered (as a canonical string) and the answer, resent as-is if the same request comes again. */
  private unmaskAnswer: { request: string; answer: Omit<SecAggUnmask, 'type' | 'round' | 'attempt'> } | null = null;

  /**
   * `dp`: the distributed-DP noise this site was announced (clip and its share of the noise), which
   * the roster's encoding must carry exactly; null for a round without DP, whose encoding must have none.
   */
  constructor(readonly site: string, readonly round: number, readonly attempt: number, private readonly dp: SiteNoise | null = null) {
    this.context = secAggContext(round, attempt);
  }

  /** Round 0: the public keys to advertise. */
  publicKeys(): { cPublic: string; sPublic: string } {
    return { cPublic: this.c.publicKey, sPublic: this.s.publicKey };
  }

  /** Round 1: checks the roster and returns one sealed envelope of shares per other site. */
  shareKeys(roster: Pick<SecAggRoster, 'sites' | 'threshold' | 'encoding'>): { to: string; ciphertext: string }[] {
    if (this.roster) fail('the roster arrived twice');
    const names = roster.sites.map((e) => e.site);
    if (names.some((n, i) => i > 0 && names[i - 1] >= n)) fail('the roster is not sorted by site with each site once', 'sites');
    const me = roster.sites.find((e) => e.site === this.site);
    if (!me || me.cPublic !== this.c.publicKey || me.sPublic !== this.s.publicKey) fail('the roster does not carry this site\'s keys', 'sites');
    const keys = roster.sites.flatMap((e) => [e.cPublic, e.sPublic]);
    if (new Set(keys).size !== keys.length) fail('the roster repeats a public key', 'sites');
    roster.sites.forEach((e) => { checkPublicKey(e.cPublic, `sites.${e.site}.cPublic`); checkPublicKey(e.sPublic, `sites.${e.site}.sPublic`); });
    if (roster.threshold < 2 || roster.threshold > roster.sites.length) fail(`threshold ${roster.threshold} must be between 2 and the roster's ${roster.sites.length} sites`, 'threshold');
    checkEncoding(roster.encoding);
    const dp = roster.encoding.dp ?? null;
    if (dp?.clip !== this.dp?.clip || dp?.noiseStd !== this.dp?.noiseStd) {
      fail(`the roster's encoding has ${dp ? `clip ${dp.clip}, noise std ${dp.noiseStd}` : 'no DP noise'}, the round was announced with ${this.dp ? `clip ${this.dp.clip}, noise std ${this.dp.noiseStd}` : 'none'}`, 'encoding.dp');
    }
    if (dp && roster.encoding.maxTotalCases !== roster.sites.length) fail(`a distributed-DP encoding weighs each of the ${roster.sites.length} roster sites 1, not ${roster.encoding.maxTotalCases} in all`, 'encoding.maxTotalCases');
    this.roster = roster.sites;
    this.threshold = roster.threshold;
    this.encoding = roster.encoding;
    const xs = roster.sites.map((_, i) => i + 1);
    const keyShares = splitSecret(this.s.privateKey, xs, roster.threshold);
    const seedShares = splitSecret(this.selfSeed, xs, roster.threshold);
    const body = (i: number): EnvelopeBody => ({ x: xs[i], keyShare: (keyShares[i] as Share).y, selfMaskShare: (seedShares[i] as Share).y });
    const envelopes: { to: string; ciphertext: string }[] = [];
    roster.sites.forEach((entry, i) => {
      if (entry.site === this.site) return void this.held.set(this.site, body(i));
      const key = agreeKey(this.c.privateKey, entry.cPublic, this.context, 'share encryption');
      envelopes.push({ to: entry.site, ciphertext: sealEnvelope(key, this.context, this.site, entry.site, JSON.stringify(body(i))) });
    });
    return envelopes;
  }

  /** After round 1: opens the envelopes addressed to this site; their senders and this site form U2. */
  receiveShares(shares: readonly { from: string; ciphertext: string }[]): void {
    const roster = this.roster ?? fail('shares arrived before the roster');
    if (this.maskingSet) fail('shares arrived twice');
    const myX = roster.findIndex((e) => e.site === this.site) + 1;
    for (const { from, ciphertext } of shares) {
      const sender = roster.find((e) => e.site === from);
      if (!sender || from === this.site) fail(`an envelope claims to come from ${from}, not another roster site`, 'shares');
      if (this.held.has(from)) fail(`two envelopes from ${from}`, 'shares');
      const key = agreeKey(this.c.privateKey, sender.cPublic, this.context, 'share encryption');
      const body = JSON.parse(openEnvelope(key, this.context, from, this.site, ciphertext)) as EnvelopeBody;
      if (body.x !== myX || typeof body.keyShare !== 'string' || typeof body.selfMaskShare !== 'string') fail(`the envelope from ${from} holds shares for another index`, 'shares');
      this.held.set(from, body);
    }
    const set = [...this.held.keys()].sort();
    if (set.length < this.threshold) fail(`shares from ${set.length} site(s) arrived, the threshold is ${this.threshold}`, 'shares');
    this.maskingSet = set;
  }

  /**
   * Round 2 from the site's weights: encodes the update as the roster's encoding says (case-weighted;
   * or, under distributed DP, clipped, weight 1, plus this site's noise keyed by siteNoiseKey) and
   * masks it. `noiseSeed` only for reproducible runs (the demo, the experiment).
   */
  maskedInput(local: Float32Array, global: Float32Array, numCases: number, noiseSeed?: number): Uint32Array {
    const encoding = this.encoding ?? fail('encoding before the roster');
    const vector = encoding.dp
      ? encodeNoisedUpdate(local, global, encoding, new GaussianStream(siteNoiseKey(noiseSeed, this.round, this.attempt, this.site))).vector
      : encodeUpdate(local, global, numCases, encoding).vector;
    return this.mask(vector);
  }

  /** Round 2: masks an encoded input in place (self mask plus one pairwise mask per other U2 site) and returns it. */
  mask(input: Uint32Array): Uint32Array {
    const roster = this.roster ?? fail('masking before the roster');
    const set = this.maskingSet ?? fail('masking before the shares arrived');
    applyMask(input, this.selfSeed, 1);
    for (const other of set) {
      if (other === this.site) continue;
      const peer = roster.find((e) => e.site === other)!;
      applyMask(input, agreeKey(this.s.privateKey, peer.sPublic, this.context, 'mask'), pairSign(this.site, other));
    }
    this.maskedInputSent = true;
    return input;
  }

  /**
   * Round 3: the shares the server needs, for one request only (the same one again, after a
   * reconnect, gets the same answer), and only for a consistent request: survivors and dropped
   * partition U2, this site survived, and at least `threshold` sites survived (fewer would let the
   * server unmask a sum of too few inputs, down to one site's own).
   */
  unmask(request: Pick<SecAggUnmaskRequest, 'survivors' | 'dropped'>): Omit<SecAggUnmask, 'type' | 'round' | 'attempt'> {
    const set = this.maskingSet ?? fail('unmasking asked before the masking set was known');
    if (!this.maskedInputSent) fail('unmasking asked before this site sent its masked input');
    const canonical = JSON.stringify([[...request.survivors].sort(), [...request.dropped].sort()]);
    if (this.unmaskAnswer) {
      if (this.unmaskAnswer.request === canonical) return this.unmaskAnswer.answer;
      fail('unmasking asked a second time in the same round, with other survivors');
    }
    const survivors = new Set(request.survivors);
    const dropped = new Set(request.dropped);
    const all = [...survivors, ...dropped];
    if (survivors.size !== request.survivors.length || dropped.size !== request.dropped.length || all.length !== set.length || new Set(all).size !== set.length || all.some((s) => !set.includes(s))) {
      fail('survivors and dropped sites do not split the masking set', 'survivors');
    }
    if (!survivors.has(this.site)) fail('this site is listed as dropped', 'survivors');
    if (survivors.size < this.threshold) fail(`${survivors.size} survivor(s) is below the threshold ${this.threshold}`, 'survivors');
    const answer = {
      selfMaskShares: [...survivors].sort().map((of) => ({ of, share: this.held.get(of)!.selfMaskShare })),
      keyShares: [...dropped].sort().map((of) => ({ of, share: this.held.get(of)!.keyShare })),
    };
    this.unmaskAnswer = { request: canonical, answer };
    return answer;
  }
}
