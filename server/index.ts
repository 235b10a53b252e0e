/**
 * The aggregation server process: one Node http(s) server carrying the site WebSocket endpoint
 * (`/ws`) and the operator's HTTP API, all state in SQLite + checkpoint files.
 *
 *   const server = await startServer({ config, dbFile, port: 0 });
 *   const { token } = registerSite(dbFile, 'hospital-1');
 *   ... sites connect to server.wsUrl ...
 *   await server.federation.done; await server.close();
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { FedSegError } from '../core/errors.js';
import { UPLOAD_PATH, WAITING_SITES_MAX } from '../core/federation/protocol.js';
import { CheckpointStore } from './checkpoints.js';
import type { FederationConfig } from './config.js';
import { Store } from './db.js';
import { Federation } from './federation.js';
import { handleHttp } from './http-api.js';
import { FailureLimiter } from './rate-limit.js';
import { checkAdminTokenStrength, hashSecret, newToken, tokenLocator } from './tokens.js';
import { openSiteEndpoint } from './transport.js';
import { UpdateUploads } from './update-upload.js';
import { UpdateSpool } from './update-spool.js';
import { waitingOf, type Waiting } from './waiting.js';

export interface ServerOptions {
  config: FederationConfig;
  /** SQLite database file (created if missing). */
  dbFile: string;
  /** Checkpoint folder; default `<dir of dbFile>/checkpoints`. */
  checkpointDir?: string;
  /** Folder for the round's accepted updates until they are aggregated; default `<dir of dbFile>/spool`. */
  spoolDir?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8787; 0 picks a free port. */
  port?: number;
  /** PEM certificate and key (file paths); enables https/wss. */
  tls?: { certFile: string; keyFile: string };
  /** Allow plain http/ws on a non-loopback address. */
  insecure?: boolean;
  /**
   * Operator token for the HTTP API (at least 20 characters, 8 different); when omitted, the stored
   * one is kept or a new one is generated. The CLI reads it from a file or the environment, never argv.
   */
  adminToken?: string;
  log?: (line: string) => void;
  /** How long an upload may wait for a slot, and go silent, before it is refused or cut off (defaults below). */
  uploadTimeouts?: { queueMs?: number; stallMs?: number };
}

export interface RunningServer {
  federation: Federation;
  store: Store;
  /** ws:// or wss:// URL sites connect to. */
  wsUrl: string;
  /** http:// or https:// base URL of the operator API. */
  httpUrl: string;
  port: number;
  /** Set only when this start generated a new admin token (print it once). */
  generatedAdminToken: string | null;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/**
 * Memory for update uploads received at once (server/update-upload.ts): 128 MiB is five full-size
 * U-Net updates, two at least whatever the model. An upload that sends nothing for UPLOAD_STALL_MS
 * is cut off; one that waits UPLOAD_QUEUE_MS for a slot is told to retry.
 */
const UPLOAD_BUFFER_BYTES = 128 * 1024 * 1024;
const UPLOAD_STALL_MS = 10_000;
const UPLOAD_QUEUE_MS = 60_000;

/**
 * Registers a site in the server database; returns its token, which is shown once and stored only
 * as a hash. `cases` is the most training cases the site's updates may claim (its FedAvg weight);
 * without it the site weighs at most the round's median case count (core/federation/bound-updates.ts).
 */
export function registerSite(dbFile: string, name: string, opts: { cases?: number } = {}): { site: string; token: string } {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new FedSegError('site name must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit', { field: 'name' });
  }
  if (opts.cases !== undefined) checkCases(opts.cases);
  const store = new Store(dbFile);
  try {
    const token = newToken();
    store.addSite(name, { locator: tokenLocator(token), hash: hashSecret(token) }, opts.cases ?? null);
    return { site: name, token };
  } finally {
    store.close();
  }
}

function checkCases(cases: number): void {
  if (!Number.isInteger(cases) || cases < 1 || cases > 1_000_000) throw new FedSegError(`--cases must be an integer from 1 to 1000000, got ${cases}`, { field: 'cases' });
}

/** Registers (or changes) the most training cases a site's updates may claim. */
export function setSiteCases(dbFile: string, name: string, cases: number): void {
  checkCases(cases);
  const store = new Store(dbFile);
  try {
    store.setRegisteredCases(name, cases);
  } finally {
    store.close();
  }
}

export function removeSite(dbFile: string, name: string): void {
  const store = new Store(dbFile);
  try {
    store.removeSite(name);
  } finally {
    store.close();
  }
}

export function listSites(dbFile: string) {
  const store = new Store(dbFile);
  try {
    return store.sites(true);
  } finally {
    store.close();
  }
}

/**
 * How often at most what the federation waits for is worked out again within one step of the round
 * loop: every approval and update changes it and every site is told, so with N sites each round would
 * otherwise cost N refreshes (each reading the store) and N broadcasts of N messages. A new step
 * (approvals, training, …) is said at once, so every step is logged however fast sites answer.
 */
const WAITING_REFRESH_MS = 250;

/**
 * Says what the federation waits for whenever that changes: one log line, and a `waiting` message to
 * every connected site; a site that connects is told the current one.
 */
function announceWaiting(federation: Federation, store: Store, log: (line: string) => void, closing: () => boolean): void {
  let last: string | null = null;
  let current: Waiting | null = null;
  let timer: NodeJS.Timeout | null = null;
  const toSite = (w: Waiting | null) => ({ type: 'waiting' as const, for: w?.for ?? null, message: w?.message ?? null, sites: (w?.sites ?? []).slice(0, WAITING_SITES_MAX), deadline: w?.deadline ?? null });
  const refresh = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (closing()) return;
    current = waitingOf(federation, store);
    const message = current?.message ?? null;
    if (message !== last) {
      last = message;
      if (message) log(message);
      const sent = toSite(current);
      for (const c of federation.registry.connections) if (c.authenticated) c.send(sent);
    }
  };
  const soon = () => {
    timer ??= setTimeout(refresh, WAITING_REFRESH_MS).unref();
  };
  federation.on('waiting', (fresh: boolean) => (fresh ? refresh() : soon()));
  federation.on('round-completed', soon);
  federation.on('site-disconnected', soon);
  federation.on('finished', refresh);
  federation.on('site-connected', (site) => {
    // The newcomer hears the state known now; what its arrival changes reaches everyone with the next refresh.
    if (current) for (const c of federation.registry.connections) if (c.site === site && c.authenticated) c.send(toSite(current));
    soon();
  });
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!opts.tls && !opts.insecure && !LOOPBACK.has(host)) {
    throw new FedSegError(`refusing to listen on ${host} without TLS: give a certificate and key, or --insecure`, { field: 'host' });
  }
  if (opts.adminToken !== undefined) checkAdminTokenStrength(opts.adminToken);
  const log = opts.log ?? (() => {});
  const store = new Store(opts.dbFile);
  let federation: Federation;
  let generatedAdminToken: string | null = null;
  // One lockout for wrong site tokens and wrong admin tokens, by remote address.
  const authFailures = new FailureLimiter();
  try {
    if (opts.adminToken) {
      store.setMeta('admin_token_hash', hashSecret(opts.adminToken));
    } else if (!store.getMeta('admin_token_hash')) {
      generatedAdminToken = newToken();
      store.setMeta('admin_token_hash', hashSecret(generatedAdminToken));
    }
    const checkpoints = new CheckpointStore(opts.checkpointDir ?? join(dirname(opts.dbFile), 'checkpoints'));
    const spool = new UpdateSpool(opts.spoolDir ?? join(dirname(opts.dbFile), 'spool'));
    federation = new Federation(opts.config, store, checkpoints, log, authFailures, spool);
    federation.recover();
  } catch (err) {
    store.close();
    throw err;
  }

  const uploads = new UpdateUploads(federation.registry.uploadTickets, (c, frame) => federation.upload(c, frame), authFailures, {
    slots: Math.max(2, Math.floor(UPLOAD_BUFFER_BYTES / opts.config.maxMessageBytes)), frameCap: opts.config.maxMessageBytes,
    stallMs: opts.uploadTimeouts?.stallMs ?? UPLOAD_STALL_MS, queueMs: opts.uploadTimeouts?.queueMs ?? UPLOAD_QUEUE_MS,
  }, log);
  const isUpload = (req: IncomingMessage) => (req.url ?? '').split('?')[0] === UPLOAD_PATH;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (isUpload(req)) return uploads.handle(req, res);
    handleHttp(req, res, { federation, store, config: opts.config, secure: Boolean(opts.tls), authFailures, log });
  };
  const http: Server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, handler)
    : createHttpServer(handler);
  // An upload's ticket, size and slot are checked before the site may send its body; other requests go on at once.
  http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!isUpload(req)) res.writeContinue();
    handler(req, res);
  });
  const sites = openSiteEndpoint(http, { maxMessageBytes: opts.config.maxMessageBytes, authFailures }, (c) => federation.attach(c));

  await new Promise<void>((resolve, reject) => {
    http.once('error', (err) => reject(new FedSegError(`cannot listen on ${host}:${opts.port ?? 8787}: ${err.message}`, { field: 'port' }, { cause: err })));
    http.listen(opts.port ?? 8787, host, resolve);
  });
  const port = (http.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  store.audit({ actor: 'server', action: 'server-started', detail: { host, port, tls: Boolean(opts.tls), strategy: federation.strategy.name } });
  let closed: Promise<void> | null = null;
  announceWaiting(federation, store, log, () => closed !== null);
  void federation.run();

  return {
    federation, store, port, generatedAdminToken,
    wsUrl: `${opts.tls ? 'wss' : 'ws'}://${hostPart}:${port}/ws`,
    httpUrl: `${opts.tls ? 'https' : 'http'}://${hostPart}:${port}`,
    close() {
      closed ??= (async () => {
        federation.stop();
        await sites.close();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        await federation.done;
        store.audit({ actor: 'server', action: 'server-stopped', detail: {} });
        store.close();
      })();
      return closed;
    },
  };
}
