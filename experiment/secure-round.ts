/**
 * One secure-aggregation round in one process, for the experiment: each site's SecAggSite and the
 * server's SecAggServer (core/privacy) exchange the protocol's messages directly, without sockets
 * or dropouts. Every site encodes and masks its update with SecAggSite.maskedInput, as site/runtime.ts
 * does, so under distributed DP it clips and adds its own noise; the strategy then gets the unmasked
 * mean as one update, as server/round-coordinator.ts hands it over.
 */
import { aggregateInMemory, type ClientUpdate, type Strategy } from '../core/federation/strategies/index.js';
import { flatten, plusFlat, type TensorList } from '../core/federation/tensors.js';
import type { SiteNoise } from '../core/privacy/fixed-point.js';
import { SecAggServer } from '../core/privacy/secagg-server.js';
import { SecAggSite } from '../core/privacy/secagg-site.js';

export interface SecureRoundSettings {
  threshold: number;
  clipRange: number;
  /** Distributed DP: what each site clips to and the std of its share of the noise; null without DP. */
  dp: SiteNoise | null;
  /** Seeds the sites' noise (siteNoiseKey), so the run is reproducible. */
  noiseSeed: number;
}

export function aggregateSecurely(strategy: Strategy, round: number, updates: readonly ClientUpdate[], global: TensorList, s: SecureRoundSettings): TensorList {
  const flatGlobal = flatten(global);
  const server = new SecAggServer(round, 1, s.threshold, s.clipRange, flatGlobal.length + 1, s.dp);
  const sites = updates.map((u) => new SecAggSite(u.site, round, 1, s.dp));
  for (const site of sites) {
    const { cPublic, sPublic } = site.publicKeys();
    server.addKeys(site.site, cPublic, sPublic);
  }
  const roster = server.fixRoster(new Map(updates.map((u) => [u.site, u.numCases])));
  for (const site of sites) server.addShares(site.site, site.shareKeys(roster));
  const relay = server.fixMaskingSet();
  for (const site of sites) site.receiveShares(relay.get(site.site)!);
  updates.forEach((u, k) => server.addMaskedInput(u.site, sites[k].maskedInput(flatten(u.weights), flatGlobal, u.numCases, s.noiseSeed)));
  const request = server.unmaskRequest();
  for (const site of sites) server.addUnmaskShares(site.site, site.unmask(request));
  const sum = server.finish();
  return aggregateInMemory(strategy, round, [{ site: 'secure sum', numCases: sum.totalCases, weights: plusFlat(global, sum.mean) }], global);
}
