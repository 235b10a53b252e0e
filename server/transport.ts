/**
 * The site endpoint's transport, and the only module that knows the WebSocket library: it accepts
 * sockets at `/ws` on the server's http(s) server, turns away browsers and locked-out addresses,
 * caps messages at the size of control messages, and hands each socket over as a SiteConnection.
 */
import type { Server } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SITE_MESSAGE_MAX_BYTES } from '../core/federation/protocol.js';
import { SiteConnection, type SiteSocket } from './connection.js';
import type { FailureLimiter } from './rate-limit.js';

export interface SiteEndpoint {
  /** Stops accepting sockets; resolves once the endpoint is closed. */
  close(): Promise<void>;
}

/** Serves the site endpoint on `http`; `accept` gets each new connection before any of its messages. */
export function openSiteEndpoint(
  http: Server, opts: { maxMessageBytes: number; authFailures: FailureLimiter }, accept: (c: SiteConnection) => void,
): SiteEndpoint {
  const { authFailures } = opts;
  const wss = new WebSocketServer({
    // Sites send only control messages here; their updates come by HTTP upload (server/update-upload.ts).
    server: http, path: '/ws', maxPayload: Math.min(SITE_MESSAGE_MAX_BYTES, opts.maxMessageBytes), perMessageDeflate: false,
    // Sites are programs (ws, Node), which send no Origin; a browser always does, so a page the
    // operator or a site admin has open cannot open a socket here. Locked-out addresses get 429.
    verifyClient: ({ req, origin }, done) => {
      if (origin) return done(false, 403, 'browsers may not open the site endpoint');
      const ip = req.socket.remoteAddress ?? '';
      if (authFailures.blocked(ip)) return done(false, 429, 'too many failed logins from this address; try again later', { 'retry-after': String(authFailures.retryAfterS(ip)) });
      done(true);
    },
  });
  wss.on('connection', (ws, req) => {
    const c = new SiteConnection(siteSocket(ws), `${req.socket.remoteAddress}:${req.socket.remotePort}`, req.socket.remoteAddress ?? '');
    const count = (chunk: Buffer) => {
      if (c.dataArrived(chunk.length)) req.socket.off('data', count);
    };
    req.socket.on('data', count);
    ws.on('message', (data: RawData, isBinary: boolean) => c.emit('message', toBuffer(data), isBinary));
    ws.on('error', (err: Error & { code?: string }) => c.emit('socket-error', { message: err.message, oversized: err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' }));
    ws.on('close', (code: number) => c.emit('closed', code));
    accept(c);
  });
  return { close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}

function siteSocket(ws: WebSocket): SiteSocket {
  return {
    get open() {
      return ws.readyState === ws.OPEN;
    },
    sendText: (text) => ws.send(text),
    sendBinary: (frame) => ws.send(frame, { binary: true }),
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
    terminate: () => ws.terminate(),
  };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
