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
import { CheckpointStore } from './checkpoints.js';
import type { FederationConfig } from './config.js';
import { Store } from './db.js';
import { Federation } from './federation.js';
import { handleHttp } from './http-api.js';
import { FailureLimiter } from './rate-limit.js';
import { checkAdminTokenStrength, hashSecret, newToken, tokenLocator } from './tokens.js';
import { openSiteEndpoint } from './transport.js';
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
 * Says what the federation waits for whenever that changes: one log line, and a `waiting` message to
 * every connected site; a site that connects is told the current one.
 */
function announceWaiting(federation: Federation, store: Store, log: (line: string) => void, closing: () => boolean): void {
  let last: string | null = null;
  const toSite = (w: Waiting | null) => ({ type: 'waiting' as const, for: w?.for ?? null, message: w?.message ?? null, sites: w?.sites ?? [], deadline: w?.deadline ?? null });
  const refresh = (): Waiting | null => {
    if (closing()) return null;
    const waiting = waitingOf(federation, store);
    const message = waiting?.message ?? null;
    if (message !== last) {
      last = message;
      if (message) log(message);
      for (const c of federation.registry.connections) if (c.authenticated) c.send(toSite(waiting));
    }
    return waiting;
  };
  federation.on('waiting', refresh);
  federation.on('round-completed', refresh);
  federation.on('finished', refresh);
  federation.on('site-disconnected', refresh);
  federation.on('site-connected', (site) => {
    const before = last;
    const waiting = refresh();
    // When nothing changed for the others, the newcomer still needs the current state.
    if (waiting && waiting.message === before) {
      for (const c of federation.registry.connections) if (c.site === site && c.authenticated) c.send(toSite(waiting));
    }
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

  const handler = (req: IncomingMessage, res: ServerResponse) => handleHttp(req, res, { federation, store, config: opts.config, secure: Boolean(opts.tls), authFailures, log });
  const http: Server = opts.tls
    ? createHttpsServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, handler)
    : createHttpServer(handler);
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
