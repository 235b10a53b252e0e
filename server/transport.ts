/**
 * The site endpoint's transport, and the only module that knows the WebSocket library: it accepts
 * sockets at `/ws` on the server's http(s) server, turns away browsers and locked-out addresses,
 * meters weight uploads through the upload gate, and hands each socket over as a SiteConnection.
 */
import type { Server } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SiteConnection, type SiteSocket } from './connection.js';
import type { FailureLimiter } from './rate-limit.js';
import { UploadGate } from './upload-gate.js';

/**
 * Memory for weight frames being received at once (server/upload-gate.ts): 128 MiB is five
 * full-size U-Net updates, two at least whatever the model. A message past 1 MiB is a weight frame.
 */
const UPLOAD_BUFFER_BYTES = 128 * 1024 * 1024;
const UPLOAD_THRESHOLD_BYTES = 1024 * 1024;
const UPLOAD_STALL_MS = 10_000;

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
    server: http, path: '/ws', maxPayload: opts.maxMessageBytes, perMessageDeflate: false,
    // Sites are programs (ws, Node), which send no Origin; a browser always does, so a page the
    // operator or a site admin has open cannot open a socket here. Locked-out addresses get 429.
    verifyClient: ({ req, origin }, done) => {
      if (origin) return done(false, 403, 'browsers may not open the site endpoint');
      const ip = req.socket.remoteAddress ?? '';
      if (authFailures.blocked(ip)) return done(false, 429, 'too many failed logins from this address; try again later', { 'retry-after': String(authFailures.retryAfterS(ip)) });
      done(true);
    },
  });
  const uploads = new UploadGate(Math.max(2, Math.floor(UPLOAD_BUFFER_BYTES / opts.maxMessageBytes)), UPLOAD_THRESHOLD_BYTES, UPLOAD_STALL_MS);
  wss.on('connection', (ws, req) => {
    const c = new SiteConnection(siteSocket(ws, () => uploads.handled(ws)), `${req.socket.remoteAddress}:${req.socket.remotePort}`, req.socket.remoteAddress ?? '');
    req.socket.on('data', (chunk: Buffer) => {
      if (c.dataArrived(chunk.length)) uploads.data(ws, chunk.length);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      c.emit('message', toBuffer(data), isBinary);
      uploads.arrived(ws);
    });
    ws.on('error', (err: Error & { code?: string }) => c.emit('socket-error', { message: err.message, oversized: err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' }));
    ws.on('close', (code: number) => {
      c.emit('closed', code);
      uploads.closed(ws);
    });
    accept(c);
  });
  return { close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}

function siteSocket(ws: WebSocket, handled: () => void): SiteSocket {
  return {
    get open() {
      return ws.readyState === ws.OPEN;
    },
    get paused() {
      return ws.isPaused;
    },
    sendText: (text) => ws.send(text),
    sendBinary: (frame) => ws.send(frame, { binary: true }),
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
    terminate: () => ws.terminate(),
    handled,
  };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
