/**
 * What the federation is waiting for, in one sentence, for the server log, the status page, every
 * connected site (`fedseg site` and the app) and /api/status: "waiting for 1 more site (2 of minSites 3
 * connected; not connected: hospital-3)", "waiting for approvals of round 1: hospital-2, hospital-4
 * (deadline 14:05:30 UTC)". Derived only from what the Federation already exposes and the store, so
 * the round loop itself does not change.
 */
import type { FederationConfig } from './config.js';
import type { Store } from './db.js';
import type { Federation } from './federation.js';

export type WaitingFor = 'sites' | 'approvals' | 'key-shares' | 'updates' | 'unmasking-shares' | 'evaluations' | 'retry';

export interface Waiting {
  for: WaitingFor;
  /** The sentence shown everywhere. */
  message: string;
  /** The sites waited on (for 'sites': the registered ones not connected). */
  sites: string[];
  /** When the wait ends at the latest (epoch ms), if it has a deadline. */
  deadline: number | null;
}

/** The facts the sentence is made from; `waitingOf` gathers them from a running server. */
export interface WaitingInput {
  state: string;
  config: Pick<FederationConfig, 'minSites' | 'rounds' | 'retryDelayS'>;
  registered: string[];
  online: string[];
  completedRounds: number;
  current: {
    round: number; attempt: number; phase: string; deadline: string;
    approvals: Record<string, string>; participants: string[]; returned: string[];
    /** In a secure round's key exchange or unmasking: the sites whose keys, shares or unmasking shares are still due. */
    secureAwaiting?: string[];
  } | null;
  /** Sites whose update for the current attempt was rejected (they are out of the round). */
  rejected: string[];
  /** Sites that reported an evaluation of the final global model. */
  finalEvaluated: string[];
  /** The latest attempt of the next round, when it ended without completing. */
  lastAttempt: { round: number; attempt: number; status: string; reason: string | null; endedAt: string | null } | null;
}

/** Site names a sentence spells out; the rest are counted (with hundreds of sites it would run to kilobytes). The `sites` list has them all. */
const NAMED_SITES = 10;

function named(sites: readonly string[]): string {
  return sites.length <= NAMED_SITES ? sites.join(', ') : `${sites.slice(0, NAMED_SITES).join(', ')} and ${sites.length - NAMED_SITES} more`;
}

/** Wall-clock time with the zone, e.g. "14:05:30 UTC": sites may sit in other time zones. */
export function formatDeadline(ms: number, timeZone?: string): string {
  return new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short', timeZone });
}


export function describeWaiting(v: WaitingInput, timeZone?: string): Waiting | null {
  if (v.state !== 'running') return null;
  const online = new Set(v.online);
  const c = v.current;
  if (c && c.phase === 'approval') {
    const deadline = Date.parse(c.deadline);
    const sites = v.registered.filter((s) => !(s in c.approvals));
    if (sites.length === 0) return null;
    const offline = sites.filter((s) => !online.has(s));
    const note = offline.length === 0 ? '' : `; not connected: ${named(offline)}`;
    return { for: 'approvals', sites, deadline, message: `waiting for approvals of round ${c.round}: ${named(sites)} (deadline ${formatDeadline(deadline, timeZone)}${note})` };
  }
  if (c && (c.phase === 'key-exchange' || c.phase === 'unmasking')) {
    const deadline = Date.parse(c.deadline);
    const sites = c.secureAwaiting ?? [];
    if (sites.length === 0) return null;
    const step = c.phase === 'key-exchange' ? 'keys and key shares' : 'unmasking shares';
    return { for: c.phase === 'key-exchange' ? 'key-shares' : 'unmasking-shares', sites, deadline, message: `waiting for ${step} of round ${c.round} (secure aggregation): ${sites.join(', ')} (deadline ${formatDeadline(deadline, timeZone)})` };
  }
  if (c && c.phase === 'training') {
    const deadline = Date.parse(c.deadline);
    const sites = c.participants.filter((s) => !c.returned.includes(s) && !v.rejected.includes(s));
    if (sites.length === 0) return null;
    return { for: 'updates', sites, deadline, message: `waiting for updates of round ${c.round}: ${named(sites)} (training deadline ${formatDeadline(deadline, timeZone)})` };
  }
  if (c) return null; // aggregating: no one to wait for
  if (v.completedRounds >= v.config.rounds) {
    const sites = v.online.filter((s) => !v.finalEvaluated.includes(s));
    if (sites.length === 0) return null;
    return { for: 'evaluations', sites, deadline: null, message: `waiting for evaluations of the final model (round ${v.config.rounds} of ${v.config.rounds}): ${named(sites)}` };
  }
  const { minSites } = v.config;
  if (v.online.length < minSites) {
    const missing = v.registered.filter((s) => !online.has(s));
    const more = minSites - v.online.length;
    let message = `waiting for ${more} more site${more === 1 ? '' : 's'} (${v.online.length} of minSites ${minSites} connected`;
    if (missing.length > 0) message += `; not connected: ${named(missing)}`;
    message += ')';
    if (v.registered.length < minSites) {
      const n = v.registered.length;
      message += `; only ${n} ${n === 1 ? 'site is' : 'sites are'} registered: register more with \`fedseg server add-site\` or lower minSites in the federation config`;
    }
    return { for: 'sites', sites: missing, deadline: null, message };
  }
  const last = v.lastAttempt;
  if (last && last.round === v.completedRounds + 1 && last.status !== 'completed' && last.status !== 'approval' && last.status !== 'training') {
    const deadline = last.endedAt ? Date.parse(last.endedAt) + v.config.retryDelayS * 1000 : null;
    return {
      for: 'retry', sites: [], deadline,
      message: `waiting to retry round ${last.round}${deadline !== null && Number.isFinite(deadline) ? ` at ${formatDeadline(deadline, timeZone)}` : ''}: attempt ${last.attempt} was ${last.status}${last.reason ? ` (${last.reason})` : ''}`,
    };
  }
  return null;
}

/** The facts of a running server. */
export function waitingInput(federation: Federation, store: Store): WaitingInput {
  const current = federation.currentRound();
  const next = federation.completedRounds + 1;
  const lastRow = store.rounds().filter((r) => r.round === next).sort((a, b) => b.attempt - a.attempt)[0];
  return {
    state: federation.state,
    config: federation.config,
    registered: store.sites().map((s) => s.name),
    online: federation.onlineSites(),
    completedRounds: federation.completedRounds,
    current,
    rejected: current ? store.updates(current.round).filter((u) => u.attempt === current.attempt && u.status === 'rejected').map((u) => u.site) : [],
    finalEvaluated: [...new Set(store.metrics('eval').filter((m) => m.round === federation.config.rounds).map((m) => m.site))],
    lastAttempt: lastRow ? { round: lastRow.round, attempt: lastRow.attempt, status: lastRow.status, reason: lastRow.reason, endedAt: lastRow.ended_at } : null,
  };
}

export function waitingOf(federation: Federation, store: Store): Waiting | null {
  return describeWaiting(waitingInput(federation, store));
}
