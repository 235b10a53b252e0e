/**
 * Development bridge: serves the built renderer to a plain browser and implements window.fedseg against the
 * real site runtime (main/service, forked as a child process exactly as Electron forks its utilityProcess),
 * through the same Host that Electron's main process uses. Listens on loopback only; every call must carry
 * the per-start secret that only the served shim knows, so other local web pages cannot drive it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { nodeArgs } from '../core/runtime/own-module.js';
import { CONTENT_SECURITY_POLICY } from '../renderer/csp.js';
import { Host } from '../main/host/host.js';
import { plainCodec, TokenStore } from '../main/host/token-store.js';
import type { ServicePort, ServiceToHost } from '../main/service/host-messages.js';
import type { SiteEvent } from '../preload/api.js';
import { BINARY_FIELD_HEADER, BRIDGE_PREFIX, JSON_HEADER, SECRET_HEADER } from './wire.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const MAX_BODY_BYTES = 256 * 1024 * 1024;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png',
  '.svg': 'image/svg+xml', '.wasm': 'application/wasm', '.json': 'application/json',
};

export interface BridgeOptions {
  /** Site data directory (settings, token, audit, review marks, predictions). */
  dataDir: string;
  /** Built renderer (vite build output). */
  rendererDir?: string;
  port?: number;
  /** Extra environment for the site-runtime process. */
  env?: NodeJS.ProcessEnv;
  log?: (message: string) => void;
}

export interface Bridge {
  url: string;
  close(): Promise<void>;
}

function forkService(env: NodeJS.ProcessEnv | undefined, log: (message: string) => void): ServicePort {
  const child = spawn(process.execPath, nodeArgs(new URL('../main/service/entry.js', import.meta.url)), {
    serialization: 'advanced',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  child.stdout?.on('data', (chunk: Buffer) => log(chunk.toString().trimEnd()));
  child.stderr?.on('data', (chunk: Buffer) => log(chunk.toString().trimEnd()));
  return {
    post: (message) => child.send(message),
    onMessage: (listener) => child.on('message', (message) => listener(message as ServiceToHost)),
    onExit: (listener) => child.on('exit', (code) => listener(code)),
    kill: () => void child.kill(),
  };
}

async function shimSource(secret: string): Promise<string> {
  const result = await build({
    entryPoints: [join(repoRoot, 'devbridge/shim.ts')],
    bundle: true, write: false, format: 'iife', platform: 'browser', target: 'es2022',
    define: { __BRIDGE_SECRET__: JSON.stringify(secret) },
    logLevel: 'error',
  });
  return result.outputFiles[0].text;
}

export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const log = options.log ?? ((message: string) => console.error(message));
  const rendererDir = normalize(options.rendererDir ?? join(repoRoot, 'renderer/dist'));
  if (!existsSync(join(rendererDir, 'index.html'))) {
    throw new Error(`no renderer build in ${rendererDir}; run "npm run build:renderer" first`);
  }
  const secret = randomBytes(24).toString('hex');
  const shim = await shimSource(secret);
  const port = forkService(options.env, log);
  const host = new Host({
    port,
    tokens: new TokenStore(join(options.dataDir, 'token.bin'), plainCodec),
    dataDir: options.dataDir,
    capabilities: { folderDialog: false, shell: 'browser' },
    log: (_level, message) => log(message),
  });
  const streams = new Set<ServerResponse>();
  host.onEvent((event: SiteEvent) => {
    const frame = `data: ${JSON.stringify(event)}\n\n`;
    for (const stream of streams) stream.write(frame);
  });

  const server = createServer((req, res) => {
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    handle(req, res).catch((err: unknown) => {
      log(`bridge: ${(err as Error)?.stack ?? String(err)}`);
      if (!res.headersSent) sendJson(res, 500, { ok: false, error: 'The development bridge failed to handle the request.' });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === `${BRIDGE_PREFIX}/shim.js`) {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' }).end(shim);
      return;
    }
    if (url.pathname === `${BRIDGE_PREFIX}/events`) {
      if (url.searchParams.get('secret') !== secret) return void res.writeHead(403).end();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': connected\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    if (url.pathname.startsWith(`${BRIDGE_PREFIX}/call/`)) {
      if (req.method !== 'POST' || req.headers[SECRET_HEADER] !== secret) return void res.writeHead(403).end();
      const channel = url.pathname.slice(`${BRIDGE_PREFIX}/call/`.length);
      const envelope = await host.call(channel, await readArg(req));
      if (envelope.ok && envelope.value instanceof Uint8Array) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': envelope.value.byteLength }).end(envelope.value);
      } else {
        sendJson(res, 200, envelope);
      }
      return;
    }
    serveStatic(url.pathname, res);
  }

  function serveStatic(pathname: string, res: ServerResponse): void {
    const relative = decodeURIComponent(pathname === '/' ? '/index.html' : pathname);
    const file = normalize(join(rendererDir, relative));
    if (!file.startsWith(rendererDir + sep) || !existsSync(file)) return void res.writeHead(404).end('not found');
    let body: Buffer | string = readFileSync(file);
    if (file.endsWith('index.html')) {
      // The shim must define window.fedseg before the renderer's module script runs.
      body = body.toString('utf8').replace('<head>', `<head>\n    <script src="${BRIDGE_PREFIX}/shim.js"></script>`);
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}/`,
    async close() {
      for (const stream of streams) stream.end();
      host.shutdown();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readArg(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  const binaryField = req.headers[BINARY_FIELD_HEADER];
  if (typeof binaryField === 'string') {
    const rest = JSON.parse(decodeURIComponent(String(req.headers[JSON_HEADER] ?? '%7B%7D'))) as Record<string, unknown>;
    return { ...rest, [binaryField]: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) };
  }
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return Symbol('invalid JSON');
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}
