/** One attempt at one round, as the server tracks it from announcement to aggregation. */
import type { RoundInstructions } from '../core/federation/protocol.js';
import type { UpdateToBound } from '../core/federation/bound-updates.js';
import type { SecAggServer } from '../core/privacy/secagg-server.js';
import type { RoundSpool } from './update-spool.js';

/** Secure rounds (core/privacy) add the key exchange after approval and the unmasking before aggregation. */
export type RoundPhase = 'approval' | 'key-exchange' | 'training' | 'unmasking' | 'aggregating';

export interface AcceptedUpdate extends UpdateToBound {
  metrics: Record<string, number>;
}

export class RoundState {
  phase: RoundPhase = 'approval';
  trainingDeadline = 0;
  /** Deadline of a secure round's key exchange or unmasking, while in it. */
  secureDeadline = 0;
  readonly responses = new Map<string, 'approved' | 'declined'>();
  /** Approvers that were sent the weights and have not yet returned or been left out. */
  readonly pending = new Set<string>();
  readonly participants = new Set<string>();
  /** Validated updates whose weights are in `spool`; only their norms and counts stay in memory. */
  readonly accepted = new Map<string, AcceptedUpdate>();
  /** Sites whose update passed the header checks and is being validated or written to the spool. */
  readonly receiving = new Set<string>();
  /** Latest training progress each participant reported (for the operator view). */
  readonly progress = new Map<string, { epoch: number; epochs: number; loss?: number }>();

  constructor(
    readonly round: number, readonly attempt: number,
    readonly instructions: Map<string, RoundInstructions>,
    readonly approvalDeadline: number,
    readonly spool: RoundSpool,
    /** The secure-aggregation state of a secure round; null in a plain one. */
    readonly secure: SecAggServer | null = null,
  ) {}

  /** Whether this attempt is collecting updates for `round`/`attempt` now. */
  collecting(round: number, attempt: number): boolean {
    return this.phase === 'training' && this.round === round && this.attempt === attempt;
  }

  /** Takes a site out of the round altogether (the operator removed it). */
  drop(site: string): void {
    this.pending.delete(site);
    this.participants.delete(site);
    this.accepted.delete(site);
  }

  /** Snapshot for the operator view. */
  view() {
    return {
      round: this.round, attempt: this.attempt, phase: this.phase,
      deadline: new Date(this.phase === 'approval' ? this.approvalDeadline : this.phase === 'key-exchange' || this.phase === 'unmasking' ? this.secureDeadline : this.trainingDeadline).toISOString(),
      approvals: Object.fromEntries(this.responses),
      participants: [...this.participants].sort(),
      returned: [...this.accepted.keys(), ...(this.secure?.survivors ?? [])].sort(),
      progress: Object.fromEntries(this.progress),
      ...(this.secure ? { secureAwaiting: this.secureAwaiting(this.secure) } : {}),
    };
  }

  private secureAwaiting(secure: SecAggServer): string[] {
    if (this.phase === 'key-exchange') {
      const approved = [...this.responses].filter(([, d]) => d === 'approved').map(([s]) => s);
      return approved.filter((s) => secure.rosterSites === null ? !secure.hasKeys(s) : secure.rosterSites.includes(s) && !secure.sentShares(s)).sort();
    }
    if (this.phase === 'unmasking') return (secure.unmasking?.survivors ?? []).filter((s) => !secure.answered(s));
    return [];
  }
}
