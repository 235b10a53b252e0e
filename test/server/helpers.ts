/**
 * Test fixtures for the federation: a tiny model, a server on 127.0.0.1 with an ephemeral port,
 * a deterministic trainer for in-process site runtimes, and a scripted site that speaks the wire
 * protocol directly so tests can send exactly the malformed traffic they need.
 */
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { encodeFrame, type ServerMessage, type UpdateFrameHeader } from '../../core/federation/protocol.js';
import type { TensorList } from '../../core/federation/tensors.js';
import { makeModelConfig, type ModelConfig } from '../../core/model/config.js';
import { architectureHash, decodeModel, encodeModel } from '../../core/weights/index.js';
import { parseFederationConfig, type FederationConfigInput } from '../../server/config.js';
import { registerSite, startServer, type RunningServer, type ServerOptions } from '../../server/index.js';
import { FederationClient } from '../../site/client.js';
import { SiteRuntime, type LocalTrainer, type RuntimeEvent } from '../../site/runtime.js';

export const TINY_MODEL = { baseFilters: 2, depth: 2, inputShape: [16, 16, 16] as [number, number, number] };
export const tinyConfig: ModelConfig = makeModelConfig(TINY_MODEL);
export const tinyHash = architectureHash(tinyConfig);
export const ADMIN = 'test-admin-token-4f9c2b7e1d';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `fedseg-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function federationConfig(overrides: Partial<FederationConfigInput> = {}) {
  return parseFederationConfig({
    model: TINY_MODEL, rounds: 1, minSites: 1, approvalDeadlineS: 10, trainingDeadlineS: 10, evaluationDeadlineS: 5,
    retryDelayS: 0, heartbeatS: 2, seed: 7, ...overrides,
  });
}

/** `cases` registers a training case count for the sites it names (add-site --cases). */
export async function startTestServer(
  dir: string, overrides: Partial<FederationConfigInput> = {}, sites: string[] = [], cases: Record<string, number> = {}, options: Partial<ServerOptions> = {},
) {
  const dbFile = join(dir, 'server.db');
  const tokens: Record<string, string> = {};
  for (const s of sites) tokens[s] = registerSite(dbFile, s, { cases: cases[s] }).token;
  const server = await startServer({ config: federationConfig(overrides), dbFile, port: 0, adminToken: ADMIN, ...options });
  return { server, tokens, dbFile };
}

/**
 * A deterministic stand-in for local training, so tests can predict the aggregate exactly: the
 * site's weights become global + shift (every value). Real training is covered by the trainer's
 * own tests and the demo; here the subject is the federation.
 */
export function shiftTrainer(shift: number, cases = { train: 4, validation: 2 }, opts: { delayMs?: number; numCases?: number } = {}): LocalTrainer {
  return {
    metricKeys: { update: ['loss', 'dice_WT'], evaluation: ['dice_WT', 'dice_TC', 'dice_ET'] },
    caseCounts: async () => cases,
    async train({ weights, instructions, onProgress, signal }) {
      for (let e = 0; e < instructions.epochs; e++) {
        await new Promise((r) => setTimeout(r, opts.delayMs ?? 5));
        if (signal.aborted) break;
        onProgress({ epoch: e + 1, epochs: instructions.epochs, loss: 1 / (e + 1) });
      }
      return {
        weights: weights.map((t) => ({ ...t, data: t.data.map((v) => v + shift) })),
        numCases: opts.numCases ?? cases.train,
        metrics: { loss: 0.5, dice_WT: 0.4 },
      };
    },
    async evaluate() {
      return { numCases: cases.validation, metrics: { dice_WT: 0.5 + shift, dice_TC: 0.4, dice_ET: 0.3 } };
    },
  };
}

export function startSite(server: RunningServer, token: string, trainer: LocalTrainer, approve: boolean | ((round: number) => boolean) = true) {
  const events: RuntimeEvent[] = [];
  const site = new SiteRuntime({
    // These tests are about the federation's mechanics; the metric privacy floor has its own test.
    url: server.wsUrl, token, trainer, initialBackoffMs: 100, maxBackoffMs: 500, minMetricCases: 1,
    approve: (req) => (typeof approve === 'function' ? approve(req.round) : approve),
  });
  site.on('event', (e) => events.push(e));
  void site.start();
  return { site, events };
}

/** Speaks the protocol by hand; records everything the server sends. */
export class ScriptedSite {
  readonly messages: ServerMessage[] = [];
  readonly globals: { round: number; purpose: string; sha256: string; weights: TensorList }[] = [];
  readonly client: FederationClient;

  constructor(url: string, token: string, cases = { train: 4, validation: 2 }) {
    this.client = new FederationClient({ url, token, cases, initialBackoffMs: 100, maxBackoffMs: 500 });
    this.client.on('message', (m) => this.messages.push(m));
    this.client.on('global', (h, payload) => this.globals.push({ round: h.round, purpose: h.purpose, sha256: h.sha256, weights: decodeModel(payload).tensors }));
  }

  start(): this {
    this.client.start();
    return this;
  }

  stop(): void {
    this.client.stop();
  }

  async until<T>(find: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    return waitFor(find, what, timeoutMs);
  }

  announce(round: number) {
    return this.until(() => this.messages.find((m): m is Extract<ServerMessage, { type: 'announce' }> => m.type === 'announce' && m.round === round), `announce of round ${round}`);
  }

  /** The weights to train on in `round`: sent in full, or named by hash when the site already holds them. */
  trainWeights(round: number) {
    return this.until(() => {
      const sent = this.globals.find((g) => g.round === round && g.purpose === 'train');
      if (sent) return sent;
      const cached = this.messages.find((m) => m.type === 'train-cached' && m.round === round);
      return cached?.type === 'train-cached' ? this.globals.find((g) => g.sha256 === cached.sha256) : undefined;
    }, `weights of round ${round}`);
  }

  /** Uploads an update frame; header fields default to a valid update for `round`/`attempt`. */
  sendUpdate(round: number, attempt: number, weights: TensorList, header: Partial<UpdateFrameHeader> = {}, config: ModelConfig = tinyConfig): void {
    const full: UpdateFrameHeader = { kind: 'update', round, attempt, architectureHash: tinyHash, numCases: 4, metrics: { loss: 1 }, trainingSeconds: 1, ...header };
    void this.client.upload(encodeFrame(full, encodeModel(config, weights)));
  }

  verdict(round: number, after = 0) {
    return this.until(() => this.messages.slice(after).find((m) => (m.type === 'update-accepted' || m.type === 'update-rejected') && m.round === round), `verdict for round ${round}`);
  }
}

export async function waitFor<T>(find: () => T | undefined | null | false, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = find();
    if (v) return v as T;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function api<T = unknown>(server: RunningServer, path: string, token = ADMIN): Promise<{ status: number; body: T }> {
  const res = await fetch(`${server.httpUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const type = res.headers.get('content-type') ?? '';
  const body = type.includes('json') ? await res.json() : type.includes('octet') ? new Uint8Array(await res.arrayBuffer()) : await res.text();
  return { status: res.status, body: body as T };
}

export function shifted(weights: TensorList, shift: number): TensorList {
  return weights.map((t) => ({ ...t, data: t.data.map((v) => v + shift) }));
}

/** Opens a raw socket and collects what the server sends until it closes. */
export function rawSocket(url: string, options: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, options);
  const received: { text?: string; binary?: number }[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (d, isBinary) => received.push(isBinary ? { binary: (d as Buffer).length } : { text: d.toString() }));
  const opened = new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('error', reject);
  });
  return { ws, received, closed, opened };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers a test starts as child processes). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
