/**
 * The server's durable state in SQLite: sites, rounds, approvals, updates, metrics and an
 * append-only audit log. WAL with synchronous=FULL so every committed row survives kill -9 and
 * power loss; every write is one statement or one transaction.
 */
import Database, { type Statement } from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { FedSegError } from '../core/errors.js';

const MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE sites (
     name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, removed_at TEXT,
     declared_train INTEGER, declared_validation INTEGER, last_seen_at TEXT);
   CREATE TABLE rounds (
     round INTEGER NOT NULL, attempt INTEGER NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('approval','training','completed','abandoned','interrupted','invalid-checkpoint')),
     started_at TEXT NOT NULL, ended_at TEXT, model_in_hash TEXT, model_out_hash TEXT,
     checkpoint TEXT, checkpoint_sha256 TEXT, sites_returned INTEGER, num_cases INTEGER, reason TEXT,
     PRIMARY KEY (round, attempt));
   CREATE TABLE approvals (
     round INTEGER NOT NULL, attempt INTEGER NOT NULL, site TEXT NOT NULL,
     decision TEXT NOT NULL CHECK (decision IN ('approved','declined','timeout')), reason TEXT, at TEXT NOT NULL,
     PRIMARY KEY (round, attempt, site));
   CREATE TABLE updates (
     id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, attempt INTEGER NOT NULL, site TEXT NOT NULL,
     received_at TEXT NOT NULL, num_cases REAL, norm REAL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('accepted','rejected')), reason TEXT);
   CREATE TABLE metrics (
     id INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL, site TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('train','eval')), name TEXT NOT NULL, value REAL NOT NULL, at TEXT NOT NULL);
   CREATE INDEX metrics_round ON metrics (round, kind);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
     round INTEGER, detail TEXT NOT NULL, model_in_hash TEXT, model_out_hash TEXT);
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;`,
  // Byzantine bounds: the case count the operator registered (NULL for sites added before, see
  // core/federation/bound-updates.ts), and what clipping and the weight cap did to each update.
  `ALTER TABLE sites ADD COLUMN registered_cases INTEGER;
   ALTER TABLE updates ADD COLUMN clipped_norm REAL;
   ALTER TABLE updates ADD COLUMN weight REAL;`,
  // Salted slow token verifiers (server/tokens.ts): token_hash now holds scrypt strings; the
  // locator finds the row. For the SHA-256 hex rows before, the locator is the hash's first 16 digits.
  `ALTER TABLE sites ADD COLUMN token_locator TEXT;
   UPDATE sites SET token_locator = substr(token_hash, 1, 16);
   CREATE UNIQUE INDEX sites_token_locator ON sites (token_locator);`,
];

/** A site is flagged when at least this many of its last FLAG_WINDOW updates were clipped or rejected. */
export const FLAG_THRESHOLD = 2;
export const FLAG_WINDOW = 5;

export type RoundRowStatus = 'approval' | 'training' | 'completed' | 'abandoned' | 'interrupted' | 'invalid-checkpoint';

export interface SiteRow {
  name: string;
  created_at: string;
  removed_at: string | null;
  declared_train: number | null;
  declared_validation: number | null;
  last_seen_at: string | null;
  /** Training cases the operator registered; an update may not claim more. */
  registered_cases: number | null;
}

const SITE_COLUMNS = 'name, created_at, removed_at, declared_train, declared_validation, last_seen_at, registered_cases';

export interface RoundRow {
  round: number;
  attempt: number;
  status: RoundRowStatus;
  started_at: string;
  ended_at: string | null;
  model_in_hash: string | null;
  model_out_hash: string | null;
  checkpoint: string | null;
  checkpoint_sha256: string | null;
  sites_returned: number | null;
  num_cases: number | null;
  reason: string | null;
}

export interface ServerAuditEntry {
  actor: string;
  action: string;
  round?: number | null;
  detail?: Record<string, unknown>;
  modelIn?: string | null;
  modelOut?: string | null;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  round: number | null;
  detail: string;
  model_in_hash: string | null;
  model_out_hash: string | null;
}

export interface UpdateRow {
  id: number;
  round: number;
  attempt: number;
  site: string;
  received_at: string;
  num_cases: number | null;
  norm: number | null;
  bytes: number;
  sha256: string;
  status: 'accepted' | 'rejected';
  reason: string | null;
  clipped_norm: number | null;
  weight: number | null;
}

const now = (): string => new Date().toISOString();

export class Store {
  readonly db: Database.Database;
  private readonly statements = new Map<string, Statement>();
  private dataVersion: number | null = null;

  /**
   * Opens (creating) the database. The file, its WAL and shared-memory files are 0600 and a folder
   * created for it is 0700: the DB holds token verifiers and the audit log.
   */
  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(file, 'a', 0o600));
      chmodSync(file, 0o600);
      this.db = new Database(file);
    } catch (err) {
      throw new FedSegError(`cannot open the server database: ${(err as Error).message}`, { file }, { cause: err });
    }
    this.db.pragma('journal_mode = WAL');
    for (const suffix of ['-wal', '-shm']) if (existsSync(file + suffix)) chmodSync(file + suffix, 0o600);
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) throw new FedSegError(`database schema version ${version} is newer than this FedSeg (${MIGRATIONS.length})`, { file: this.file });
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** A prepared statement, compiled once per connection: preparing costs more than running most of these. */
  private sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /**
   * True when another connection committed to the database since the last call (the first call is
   * true): `fedseg server remove-site` runs in its own process, and checking this costs far less
   * than re-reading the site table before every update.
   */
  changedElsewhere(): boolean {
    const version = this.db.pragma('data_version', { simple: true }) as number;
    const changed = version !== this.dataVersion;
    this.dataVersion = version;
    return changed;
  }

  // ---- meta ----
  getMeta(key: string): string | null {
    const row = this.sql('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.sql('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // ---- audit ----
  audit(e: ServerAuditEntry): void {
    this.sql('INSERT INTO audit (at, actor, action, round, detail, model_in_hash, model_out_hash) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(now(), e.actor, e.action, e.round ?? null, JSON.stringify(e.detail ?? {}), e.modelIn ?? null, e.modelOut ?? null);
  }

  auditLog(afterId = 0, limit = 1000): AuditRow[] {
    return this.sql('SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as AuditRow[];
  }

  // ---- sites ----
  /** `token` is the site's locator and salted verifier (server/tokens.ts). */
  addSite(name: string, token: { locator: string; hash: string }, registeredCases: number | null = null): void {
    const existing = this.sql('SELECT removed_at FROM sites WHERE name = ?').get(name) as { removed_at: string | null } | undefined;
    if (existing && existing.removed_at === null) throw new FedSegError(`site "${name}" is already registered`, { field: 'name' });
    this.transaction(() => {
      this.sql(`INSERT INTO sites (name, token_hash, token_locator, created_at, registered_cases) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, token_locator = excluded.token_locator,
          created_at = excluded.created_at, removed_at = NULL, registered_cases = excluded.registered_cases`)
        .run(name, token.hash, token.locator, now(), registeredCases);
      this.audit({ actor: 'operator', action: 'site-added', detail: { site: name, registeredCases } });
    });
  }

  removeSite(name: string): void {
    this.transaction(() => {
      const result = this.sql('UPDATE sites SET removed_at = ? WHERE name = ? AND removed_at IS NULL').run(now(), name);
      if (result.changes === 0) throw new FedSegError(`no registered site named "${name}"`, { field: 'name' });
      this.audit({ actor: 'operator', action: 'site-removed', detail: { site: name } });
    });
  }

  setRegisteredCases(name: string, cases: number): void {
    this.transaction(() => {
      const result = this.sql('UPDATE sites SET registered_cases = ? WHERE name = ? AND removed_at IS NULL').run(cases, name);
      if (result.changes === 0) throw new FedSegError(`no registered site named "${name}"`, { field: 'name' });
      this.audit({ actor: 'operator', action: 'site-cases-registered', detail: { site: name, registeredCases: cases } });
    });
  }

  sites(includeRemoved = false): SiteRow[] {
    const sql = `SELECT ${SITE_COLUMNS} FROM sites
      ${includeRemoved ? '' : 'WHERE removed_at IS NULL'} ORDER BY name`;
    return this.sql(sql).all() as SiteRow[];
  }

  /** How many sites are registered and not removed. */
  siteCount(): number {
    return (this.sql('SELECT COUNT(*) AS n FROM sites WHERE removed_at IS NULL').get() as { n: number }).n;
  }

  /** The active site whose token has this locator, with its stored verifier. */
  siteByTokenLocator(locator: string): (SiteRow & { token_hash: string }) | null {
    return (this.sql(`SELECT ${SITE_COLUMNS}, token_hash FROM sites WHERE token_locator = ? AND removed_at IS NULL`)
      .get(locator) as (SiteRow & { token_hash: string }) | undefined) ?? null;
  }

  /** Replaces a site's legacy SHA-256 verifier with a salted one after it authenticated. */
  setSiteTokenHash(name: string, hash: string): void {
    this.sql('UPDATE sites SET token_hash = ? WHERE name = ?').run(hash, name);
  }

  siteSeen(name: string, declaredTrain: number, declaredValidation: number): void {
    this.sql('UPDATE sites SET declared_train = ?, declared_validation = ?, last_seen_at = ? WHERE name = ?')
      .run(declaredTrain, declaredValidation, now(), name);
  }

  // ---- rounds ----
  rounds(): RoundRow[] {
    return this.sql('SELECT * FROM rounds ORDER BY round, attempt').all() as RoundRow[];
  }

  completedRounds(): RoundRow[] {
    return this.sql("SELECT * FROM rounds WHERE status = 'completed' ORDER BY round").all() as RoundRow[];
  }

  completedRound(round: number): RoundRow | null {
    return (this.sql("SELECT * FROM rounds WHERE round = ? AND status = 'completed'").get(round) as RoundRow | undefined) ?? null;
  }

  nextAttempt(round: number): number {
    const row = this.sql('SELECT MAX(attempt) AS a FROM rounds WHERE round = ?').get(round) as { a: number | null };
    return (row.a ?? 0) + 1;
  }

  /**
   * Attempts of `round` that missed their quorum since it last completed (a later invalid checkpoint
   * was once completed) and since the federation last gave up on it: what counts toward
   * maxAttemptsPerRound, read from the rounds table and audit log so a restart does not reset it.
   * Interrupted attempts (server stopped) are not the sites' doing and do not count.
   */
  missedAttempts(round: number): number {
    const row = this.sql(`SELECT COUNT(*) AS n FROM rounds WHERE round = @round AND status = 'abandoned' AND attempt > MAX(
        COALESCE((SELECT MAX(attempt) FROM rounds WHERE round = @round AND status IN ('completed', 'invalid-checkpoint')), 0),
        COALESCE((SELECT MAX(json_extract(detail, '$.attempt')) FROM audit WHERE round = @round AND action = 'federation-failed'), 0))`)
      .get({ round }) as { n: number };
    return row.n;
  }

  startRound(round: number, attempt: number, modelIn: string): void {
    this.transaction(() => {
      this.sql("INSERT INTO rounds (round, attempt, status, started_at, model_in_hash) VALUES (?, ?, 'approval', ?, ?)")
        .run(round, attempt, now(), modelIn);
      this.audit({ actor: 'server', action: 'round-announced', round, detail: { attempt }, modelIn });
    });
  }

  setRoundStatus(round: number, attempt: number, status: RoundRowStatus, reason: string | null = null): void {
    const ended = status === 'approval' || status === 'training' ? null : now();
    this.sql('UPDATE rounds SET status = ?, reason = COALESCE(?, reason), ended_at = COALESCE(?, ended_at) WHERE round = ? AND attempt = ?')
      .run(status, reason, ended, round, attempt);
  }

  completeRound(r: {
    round: number; attempt: number; modelIn: string; modelOut: string; checkpoint: string; checkpointSha256: string; sites: string[]; numCases: number; strategy: string;
    /** clipBound null: no server-side clipping (secure rounds, where the server never sees one update). */
    bounds: { site: string; clippedTo: number | null; weight: number }[]; clipBound: number | null;
  }): void {
    this.transaction(() => {
      const mark = this.sql("UPDATE updates SET clipped_norm = ?, weight = ? WHERE round = ? AND attempt = ? AND site = ? AND status = 'accepted'");
      for (const b of r.bounds) mark.run(b.clippedTo, b.weight, r.round, r.attempt, b.site);
      this.sql(`UPDATE rounds SET status = 'completed', ended_at = ?, model_out_hash = ?, checkpoint = ?, checkpoint_sha256 = ?,
        sites_returned = ?, num_cases = ? WHERE round = ? AND attempt = ?`)
        .run(now(), r.modelOut, r.checkpoint, r.checkpointSha256, r.sites.length, r.numCases, r.round, r.attempt);
      this.audit({
        actor: 'server', action: 'round-completed', round: r.round,
        detail: {
          attempt: r.attempt, sites: r.sites, numCases: r.numCases, strategy: r.strategy, checkpointSha256: r.checkpointSha256,
          clipBound: r.clipBound, clipped: r.bounds.filter((b) => b.clippedTo !== null).map((b) => b.site),
        },
        modelIn: r.modelIn, modelOut: r.modelOut,
      });
    });
  }

  /** Round 0: the seeded initial model, recorded as a completed round with its checkpoint. */
  recordInitialModel(modelHash: string, checkpoint: string, checkpointSha256: string, seed: number): void {
    this.transaction(() => {
      this.sql(`INSERT INTO rounds (round, attempt, status, started_at, ended_at, model_out_hash, checkpoint, checkpoint_sha256, sites_returned, num_cases)
        VALUES (0, ?, 'completed', ?, ?, ?, ?, ?, 0, 0)`).run(this.nextAttempt(0), now(), now(), modelHash, checkpoint, checkpointSha256);
      this.audit({ actor: 'server', action: 'initial-model', round: 0, detail: { seed, checkpointSha256 }, modelOut: modelHash });
    });
  }

  // ---- approvals, updates, metrics ----
  recordApproval(round: number, attempt: number, site: string, decision: 'approved' | 'declined' | 'timeout', reason: string | null = null): void {
    this.transaction(() => {
      this.sql('INSERT OR IGNORE INTO approvals (round, attempt, site, decision, reason, at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(round, attempt, site, decision, reason, now());
      this.audit({ actor: decision === 'timeout' ? 'server' : site, action: `approval-${decision}`, round, detail: { attempt, site, ...(reason ? { reason } : {}) } });
    });
  }

  approvals(round?: number): { round: number; attempt: number; site: string; decision: string; reason: string | null; at: string }[] {
    return (round === undefined
      ? this.sql('SELECT * FROM approvals ORDER BY round, attempt, site').all()
      : this.sql('SELECT * FROM approvals WHERE round = ? ORDER BY attempt, site').all(round)) as never;
  }

  recordUpdate(u: { round: number; attempt: number; site: string; numCases: number | null; norm: number | null; bytes: number; sha256: string; status: 'accepted' | 'rejected'; reason: string | null; metrics?: Record<string, number> }): void {
    this.transaction(() => {
      this.sql(`INSERT INTO updates (round, attempt, site, received_at, num_cases, norm, bytes, sha256, status, reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(u.round, u.attempt, u.site, now(), u.numCases, u.norm, u.bytes, u.sha256, u.status, u.reason);
      if (u.status === 'accepted' && u.metrics) this.insertMetrics(u.round, u.site, 'train', { ...u.metrics, numCases: u.numCases ?? 0, updateNorm: u.norm ?? 0 });
      this.audit({ actor: u.site, action: `update-${u.status}`, round: u.round, detail: { attempt: u.attempt, numCases: u.numCases, norm: u.norm, bytes: u.bytes, ...(u.reason ? { reason: u.reason } : {}) }, modelIn: u.sha256 });
    });
  }

  hasAcceptedUpdate(round: number, attempt: number, site: string): boolean {
    return this.sql("SELECT 1 FROM updates WHERE round = ? AND attempt = ? AND site = ? AND status = 'accepted'").get(round, attempt, site) !== undefined;
  }

  updates(round?: number): UpdateRow[] {
    return (round === undefined
      ? this.sql('SELECT * FROM updates ORDER BY id').all()
      : this.sql('SELECT * FROM updates WHERE round = ? ORDER BY id').all(round)) as UpdateRow[];
  }

  /**
   * Sites whose updates were clipped or rejected at least FLAG_THRESHOLD times among their last
   * FLAG_WINDOW updates, with those counts (for the status page).
   */
  flaggedSites(): Map<string, { clipped: number; rejected: number; of: number }> {
    const rows = this.sql(`SELECT site, status, clipped_norm FROM (
        SELECT site, status, clipped_norm, ROW_NUMBER() OVER (PARTITION BY site ORDER BY id DESC) AS recent FROM updates)
      WHERE recent <= ?`).all(FLAG_WINDOW) as { site: string; status: string; clipped_norm: number | null }[];
    const counts = new Map<string, { clipped: number; rejected: number; of: number }>();
    for (const r of rows) {
      const c = counts.get(r.site) ?? { clipped: 0, rejected: 0, of: 0 };
      c.of++;
      if (r.status === 'rejected') c.rejected++;
      else if (r.clipped_norm !== null) c.clipped++;
      counts.set(r.site, c);
    }
    return new Map([...counts].filter(([, c]) => c.clipped + c.rejected >= FLAG_THRESHOLD));
  }

  recordEvaluation(round: number, site: string, numCases: number, metrics: Record<string, number>): void {
    this.transaction(() => {
      this.sql("DELETE FROM metrics WHERE round = ? AND site = ? AND kind = 'eval'").run(round, site);
      this.insertMetrics(round, site, 'eval', { ...metrics, numCases });
      this.audit({ actor: site, action: 'evaluation-reported', round, detail: { numCases, metrics } });
    });
  }

  private insertMetrics(round: number, site: string, kind: 'train' | 'eval', metrics: Record<string, number>): void {
    const insert = this.sql('INSERT INTO metrics (round, site, kind, name, value, at) VALUES (?, ?, ?, ?, ?, ?)');
    const at = now();
    for (const [name, value] of Object.entries(metrics)) insert.run(round, site, kind, name, value, at);
  }

  metrics(kind: 'train' | 'eval'): { round: number; site: string; name: string; value: number }[] {
    return this.sql('SELECT round, site, name, value FROM metrics WHERE kind = ? ORDER BY round, site, name').all(kind) as never;
  }
}
