/**
 * Start-up recovery (SPEC section 5): refuses a store made for another model, seed or strategy,
 * clears what a crash left half-done (temporary checkpoint files, spooled updates, rounds in
 * progress), and restores the last completed round whose checkpoint verifies, or seeds round 0.
 */
import { FedSegError } from '../core/errors.js';
import type { Strategy } from '../core/federation/strategies/index.js';
import { initialWeights } from '../core/model/init.js';
import type { CheckpointStore } from './checkpoints.js';
import type { FederationConfig } from './config.js';
import type { Store } from './db.js';
import type { GlobalModel } from './global-model.js';
import type { UpdateSpool } from './update-spool.js';

export interface RecoveryParts {
  config: FederationConfig;
  store: Store;
  checkpoints: CheckpointStore;
  spool: UpdateSpool;
  strategy: Strategy;
  log: (line: string) => void;
}

export function recover(global: GlobalModel, { config, store, checkpoints, spool, strategy, log }: RecoveryParts): void {
  checkIdentity(global.architectureHash, config, store);
  const swept = checkpoints.sweepTemporaryFiles();
  if (swept.length > 0) store.audit({ actor: 'server', action: 'partial-checkpoint-removed', detail: { files: swept } });
  const spooled = spool.sweep();
  if (spooled.length > 0) store.audit({ actor: 'server', action: 'spooled-updates-removed', detail: { rounds: spooled } });
  for (const row of store.rounds()) {
    if (row.status === 'approval' || row.status === 'training') {
      store.setRoundStatus(row.round, row.attempt, 'interrupted', 'server stopped during the round');
      store.audit({ actor: 'server', action: 'round-interrupted', round: row.round, detail: { attempt: row.attempt, phase: row.status } });
    }
  }
  for (const row of store.completedRounds().reverse()) {
    const loaded = row.checkpoint && row.checkpoint_sha256 ? checkpoints.read(row.checkpoint, row.checkpoint_sha256, config.modelConfig) : null;
    if (loaded) {
      global.adopt(row.round, loaded.model.tensors, loaded.model.sha256, loaded.bytes);
      const state = checkpoints.readStrategyState(row.checkpoint!, config.modelConfig);
      if (state.length > 0) strategy.importState(state);
      store.audit({ actor: 'server', action: 'resumed', round: row.round, detail: { checkpoint: row.checkpoint }, modelOut: global.hash });
      log(`resuming after round ${row.round} (checkpoint ${row.checkpoint})`);
      return;
    }
    store.setRoundStatus(row.round, row.attempt, 'invalid-checkpoint', 'checkpoint missing or its SHA-256 does not match');
    store.audit({ actor: 'server', action: 'checkpoint-rejected', round: row.round, detail: { checkpoint: row.checkpoint, expectedSha256: row.checkpoint_sha256 } });
    log(`checkpoint of round ${row.round} is torn or missing; ignoring it`);
  }
  const tensors = initialWeights(config.modelConfig, config.seed);
  const written = checkpoints.write(0, config.modelConfig, tensors, null);
  global.adopt(0, tensors, written.modelHash, written.bytes);
  store.recordInitialModel(written.modelHash, written.file, written.sha256, config.seed);
  log(`initial global model from seed ${config.seed} (${written.file})`);
}

/**
 * A store belongs to one architecture, seed and strategy; resuming it under others would mix models.
 * With differential privacy also to one clip, noise multiplier and sampling rate: the epsilon of the
 * rounds already released was computed for them (a store without DP keeps its old identity).
 */
function checkIdentity(architectureHash: string, config: FederationConfig, store: Store): void {
  const stored = store.getMeta('config');
  const p = config.privacy;
  const privacy = p ? { clip: p.clip, noiseMultiplier: p.noiseMultiplier, samplingRate: p.samplingRate } : undefined;
  const identity = JSON.stringify({ architectureHash, seed: config.seed, strategy: config.strategy.name, privacy });
  if (stored && stored !== identity) {
    const before = JSON.parse(stored) as Record<string, unknown>;
    const now = JSON.parse(identity) as Record<string, unknown>;
    const changed = [...new Set([...Object.keys(now), ...Object.keys(before)])].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(now[k]));
    throw new FedSegError(`this server state was created with a different ${changed.join(', ')}; use a new --db or the original config`, { file: store.file, field: changed[0] });
  }
  store.setMeta('config', identity);
}
