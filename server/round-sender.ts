/** What the server sends a site about a round: the announcement and the global weights to train on. */
import type { Announce } from '../core/federation/protocol.js';
import type { Strategy } from '../core/federation/strategies/index.js';
import { checkBudget } from '../core/privacy/budget.js';
import type { FederationConfig } from './config.js';
import type { SiteConnection } from './connection.js';
import type { Store } from './db.js';
import type { GlobalModel } from './global-model.js';
import type { RoundState } from './round-state.js';

/** Shown to a site admin before approval: everything that leaves the site if they approve. */
const LEAVES_SITE = [
  'the locally trained model weights (same architecture as the global model)',
  'the number of training cases used',
  'aggregate training and validation metrics (loss, Dice per region)',
];
/** The same under secure aggregation (docs/PRIVACY.md). */
const LEAVES_SITE_SECURE = [
  'the change to the model weights and the number of training cases, masked: the server can only learn their sum over at least the threshold of sites',
  'two public keys for this round, and key shares encrypted for the other sites',
  'aggregate validation metrics of each new global model (Dice per region); no training metrics',
];

export class RoundSender {
  constructor(private readonly config: FederationConfig, private readonly store: Store, private readonly strategy: Strategy, private readonly global: GlobalModel) {}

  /** The architecture every model frame on the wire has. */
  get architectureHash(): string {
    return this.global.architectureHash;
  }

  announce(c: SiteConnection, state: RoundState): void {
    const config = this.config;
    const instructions = state.instructions.get(c.site!) ?? [...state.instructions.values()][0] ?? {
      epochs: config.localEpochs, learningRate: config.learningRate, batchSize: config.batchSize, mu: 0, seed: 0,
    };
    const announce: Announce = {
      type: 'announce', round: state.round, attempt: state.attempt, totalRounds: config.rounds,
      approvalDeadline: state.approvalDeadline, trainingDeadlineS: config.trainingDeadlineS,
      strategy: this.strategy.name, architectureHash: this.global.architectureHash,
      model: config.modelConfig, instructions,
      leavesSite: [
        ...(config.privacy ? [`the update is clipped to L2 norm ${config.privacy.clip} from the global model before it leaves${config.secureAggregation ? ', weighs 1 and carries this site\'s share of the noise' : ''}`] : []),
        ...(config.secureAggregation ? LEAVES_SITE_SECURE : LEAVES_SITE),
      ],
      sitesRegistered: this.store.siteCount(),
      ...(config.secureAggregation ? { secureAggregation: { threshold: config.secureAggregation.threshold, clipRange: config.secureAggregation.clipRange } } : {}),
      // The same numbers on a re-announce after a reconnect: the round cannot complete in between.
      ...(config.privacy ? { privacy: checkBudget(config.privacy, this.global.round).privacy } : {}),
    };
    c.send(announce);
  }

  /** Sends the weights to train on, or just their hash when this connection already holds them; true if cached. */
  trainWeights(c: SiteConnection, round: number, frame = this.global.frame('train', round)): boolean {
    if (c.lastGlobalHash === this.global.hash) {
      c.send({ type: 'train-cached', round, sha256: this.global.hash });
      return true;
    }
    c.sendFrame(frame, this.global.hash);
    return false;
  }
}
