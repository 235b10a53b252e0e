/**
 * The operator's read-only HTTP API. Everything requires the admin token, as
 * `Authorization: Bearer <token>`, or (for the browser status page) the HttpOnly cookie set by
 * opening `/?token=<token>` once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { formatIssues } from '../core/federation/protocol.js';
import type { FederationConfig } from './config.js';
import type { Store } from './db.js';
import type { Federation } from './federation.js';
import { globalMetricsByRound } from './metrics-summary.js';
import { renderStatusPage, type StatusView } from './status-page.js';
import type { FailureLimiter } from './rate-limit.js';
import { hashSecret, isLegacyHash, verifySecret } from './tokens.js';
import { waitingOf } from './waiting.js';

export interface ApiContext {
  federation: Federation;
  store: Store;
  config: FederationConfig;
  secure: boolean;
  /** Wrong admin tokens count toward the remote address's lockout (shared with site hellos). */
  authFailures: FailureLimiter;
  log: (line: string) => void;
}

/** Sent with every response, including errors and the model download. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

const AuditQuerySchema = z.object({
  after: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

const COOKIE = 'fedseg_admin';

function presentedToken(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const cookie = req.headers.cookie?.split(';').map((c) => c.trim()).find((c) => c.startsWith(`${COOKIE}=`));
  return cookie ? decodeURIComponent(cookie.slice(COOKIE.length + 1)) : null;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

export function statusView(ctx: ApiContext): StatusView {
  const { federation, store } = ctx;
  const online = new Set(federation.onlineSites());
  const traffic = federation.connectionStats();
  const flagged = store.flaggedSites();
  return {
    state: federation.state,
    strategy: federation.strategy.name,
    totalRounds: ctx.config.rounds,
    completedRounds: federation.completedRounds,
    current: federation.currentRound(),
    sites: store.sites().map((s) => ({
      name: s.name, online: online.has(s.name), declaredTrain: s.declared_train, registeredCases: s.registered_cases, lastSeen: s.last_seen_at,
      flag: flagged.get(s.name) ?? null,
      bytesSent: traffic[s.name]?.bytesSent ?? null, bytesReceived: traffic[s.name]?.bytesReceived ?? null,
    })),
    rounds: store.rounds(),
    globalMetrics: globalMetricsByRound(store.metrics('eval')),
    waiting: waitingOf(federation, store),
    endReason: federation.endReason,
    privacy: federation.privacySpent(),
  };
}

export function handleHttp(req: IncomingMessage, res: ServerResponse, ctx: ApiContext): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  try {
    route(req, res, ctx);
  } catch (err) {
    // The details (e.g. a raw SQLite message) go to the server log, not to the client.
    ctx.log(`operator API error on ${req.method} ${req.url?.split('?')[0]}: ${(err as Error).message}`);
    json(res, 500, { ok: false, error: 'internal error (see the server log)' });
  }
}

/** Checks a presented admin token, counting failures toward the address's lockout and auditing them. */
function adminTokenOk(req: IncomingMessage, ctx: ApiContext, token: string | null): boolean {
  const stored = ctx.store.getMeta('admin_token_hash');
  if (stored && token !== null && verifySecret(token, stored)) {
    if (isLegacyHash(stored)) ctx.store.setMeta('admin_token_hash', hashSecret(token));
    return true;
  }
  const ip = req.socket.remoteAddress ?? '';
  const { audit, blocked } = ctx.authFailures.fail(ip);
  if (audit) {
    ctx.store.audit({
      actor: `operator API ${ip}`, action: 'admin-auth-failed',
      detail: { path: new URL(req.url ?? '/', 'http://localhost').pathname, reason: token === null ? 'no token' : 'wrong token', ...(blocked ? { lockedOutForS: ctx.authFailures.retryAfterS(ip) } : {}) },
    });
  }
  return false;
}

function route(req: IncomingMessage, res: ServerResponse, ctx: ApiContext): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET') return json(res, 405, { ok: false, error: 'the operator API is read-only' });
  // Liveness for container health checks and load balancers: no token, and it tells nothing but that the server answers.
  if (url.pathname === '/healthz') return json(res, 200, { ok: true });
  const ip = req.socket.remoteAddress ?? '';
  if (ctx.authFailures.blocked(ip)) {
    res.setHeader('retry-after', String(ctx.authFailures.retryAfterS(ip)));
    return json(res, 429, { ok: false, error: 'too many failed logins from this address; try again later' });
  }

  // Browser login: exchange ?token= for an HttpOnly cookie, then drop the token from the URL.
  const queryToken = url.pathname === '/' ? url.searchParams.get('token') : null;
  if (queryToken !== null) {
    if (!adminTokenOk(req, ctx, queryToken)) return json(res, 401, { ok: false, error: 'invalid admin token' });
    res.writeHead(303, {
      location: '/',
      'set-cookie': `${COOKIE}=${encodeURIComponent(queryToken)}; HttpOnly; SameSite=Strict; Path=/${ctx.secure ? '; Secure' : ''}`,
    });
    return void res.end();
  }
  if (!adminTokenOk(req, ctx, presentedToken(req))) {
    res.setHeader('www-authenticate', 'Bearer realm="fedseg"');
    return json(res, 401, { ok: false, error: 'admin token required (Authorization: Bearer <token>, or open /?token=<token>)' });
  }

  const path = url.pathname;
  if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return void res.end(renderStatusPage(statusView(ctx)));
  }
  if (path === '/api/status') {
    const v = statusView(ctx);
    return json(res, 200, {
      state: v.state, strategy: v.strategy, totalRounds: v.totalRounds, completedRounds: v.completedRounds,
      current: v.current, waiting: v.waiting, endReason: v.endReason, privacy: v.privacy, sitesOnline: v.sites.filter((s) => s.online).map((s) => s.name), sites: v.sites,
      architectureHash: ctx.federation.architectureHash,
    });
  }
  if (path === '/api/sites') return json(res, 200, statusView(ctx).sites);
  if (path === '/api/rounds') {
    const global = new Map(globalMetricsByRound(ctx.store.metrics('eval')).map((m) => [m.round, m]));
    const train = ctx.store.metrics('train');
    return json(res, 200, ctx.store.rounds().map((r) => ({
      ...r,
      approvals: ctx.store.approvals(r.round).filter((a) => a.attempt === r.attempt).map(({ site, decision, reason }) => ({ site, decision, reason })),
      updates: ctx.store.updates(r.round).filter((u) => u.attempt === r.attempt).map(({ site, status, reason, num_cases, norm, bytes }) => ({ site, status, reason, numCases: num_cases, norm, bytes })),
      siteTrainingMetrics: r.status === 'completed' ? groupBySite(train.filter((m) => m.round === r.round)) : {},
      siteEvaluation: r.status === 'completed' ? groupBySite(ctx.store.metrics('eval').filter((m) => m.round === r.round)) : {},
      globalMetrics: r.status === 'completed' ? global.get(r.round)?.metrics ?? null : null,
    })));
  }
  if (path === '/api/audit') {
    const query = AuditQuerySchema.safeParse(Object.fromEntries(url.searchParams));
    if (!query.success) return json(res, 400, { ok: false, error: `bad query: ${formatIssues(query.error)}`, field: String(query.error.issues[0]?.path[0] ?? '') });
    return json(res, 200, ctx.store.auditLog(query.data.after, query.data.limit)
      .map((e) => ({ ...e, detail: JSON.parse(e.detail) as unknown })));
  }
  const model = /^\/api\/rounds\/(\d+)\/model$/.exec(path);
  if (model) {
    const round = Number(model[1]);
    const row = ctx.store.completedRound(round);
    const file = row?.checkpoint && row.checkpoint_sha256 ? ctx.federation.checkpoints.read(row.checkpoint, row.checkpoint_sha256, ctx.config.modelConfig) : null;
    if (!file) return json(res, 404, { ok: false, error: `no verified global model for round ${round}` });
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="fedseg-global-round-${round}.fsm"`,
      'x-fedseg-model-sha256': file.model.sha256,
      'content-length': String(file.bytes.length),
    });
    return void res.end(file.bytes);
  }
  json(res, 404, { ok: false, error: `no such endpoint: ${path}` });
}

function groupBySite(rows: readonly { site: string; name: string; value: number }[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of rows) (out[r.site] ??= {})[r.name] = r.value;
  return out;
}
