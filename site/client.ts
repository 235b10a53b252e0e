/**
 * The site's end of the wire: one authenticated WebSocket to the aggregation server, re-opened with
 * exponential backoff when it drops, with a heartbeat watchdog. Knows the protocol, not the rounds.
 */
import { EventEmitter } from 'node:events';
import WebSocket, { type RawData } from 'ws';
import { errorMessage } from '../core/errors.js';
import {
  CLOSE, decodeFrame, decodeJson, encodeFrame, MAX_FRAME_BYTES, PROTOCOL_VERSION, RefusalCodeSchema, ServerMessageSchema,
  type AuthFailed, type FrameHeader, type GlobalFrameHeader, type MaskedUpdateFrameHeader, type ServerMessage, type SiteMessage, type UpdateFrameHeader,
} from '../core/federation/protocol.js';
import { uploadFrame } from './update-upload.js';

export interface ClientOptions {
  url: string;
  token: string;
  cases: { train: number; validation: number };
  /** Extra CA certificate (PEM) to trust for wss:// with a private CA or self-signed server. */
  ca?: string | Buffer;
  /** The largest frame this site accepts at all; the server's cap (sent in welcome) applies below it. Default 1 GiB. */
  maxMessageBytes?: number;
  /** First reconnect delay; doubles up to maxBackoffMs, with jitter. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  software?: string;
}

export interface ClientEvents {
  welcome: [site: string, heartbeatMs: number];
  message: [message: ServerMessage];
  global: [header: GlobalFrameHeader, payload: Uint8Array];
  disconnected: [reason: string, retryInMs: number | null];
  /** The server refused the token or protocol: reconnecting would not help. */
  refused: [refusal: Refusal];
  'protocol-error': [message: string];
}

/** Why the server refused this site: a code to act on and the server's words. */
export type Refusal = Pick<AuthFailed, 'code' | 'reason'>;

export class FederationClient extends EventEmitter<ClientEvents> {
  private ws: WebSocket | null = null;
  private stopped = false;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private heartbeatMs = 30_000;
  private authenticated = false;
  private refused = false;
  /** Frames above this are refused: the smaller of this site's limit and the cap the server announced (its model's size). */
  private frameCap: number;
  /** Authorises this session's update uploads (from welcome). */
  private uploadTicket: string | null = null;
  site: string | null = null;
  bytesSent = 0;
  bytesReceived = 0;

  constructor(private readonly opts: ClientOptions) {
    super();
    this.backoffMs = opts.initialBackoffMs ?? 500;
    this.frameCap = maxPayloadOf(opts);
  }

  get connected(): boolean {
    return this.authenticated && this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.stopped = false;
    this.refused = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.ws?.close(1000, 'site stopping');
    this.ws = null;
  }

  send(message: SiteMessage): boolean {
    if (!this.connected) return false;
    const text = JSON.stringify(message);
    this.bytesSent += Buffer.byteLength(text);
    this.ws!.send(text);
    return true;
  }

  /**
   * Uploads a model update, or in a secure round the masked input (site/update-upload.ts); resolves
   * to the frame's size once the server has taken it in, or null when not connected or the upload
   * failed (reported as a protocol error). The verdict comes as a message.
   */
  sendUpdate(header: UpdateFrameHeader | MaskedUpdateFrameHeader, modelBytes: Uint8Array): Promise<number | null> {
    return this.upload(encodeFrame(header, modelBytes));
  }

  /** Uploads an encoded update frame with this session's upload ticket. */
  async upload(frame: Uint8Array): Promise<number | null> {
    const ws = this.ws;
    const ticket = this.uploadTicket;
    if (!this.connected || !ticket) return null;
    this.bytesSent += frame.length;
    try {
      await uploadFrame({ wsUrl: this.opts.url, ticket, ca: this.opts.ca, live: () => this.ws === ws && this.connected }, frame);
    } catch (err) {
      this.emit('protocol-error', errorMessage(err));
      return null;
    }
    return frame.length;
  }

  private open(): void {
    const maxPayload = maxPayloadOf(this.opts);
    this.frameCap = maxPayload;
    const ws = new WebSocket(this.opts.url, {
      maxPayload, perMessageDeflate: false, ca: this.opts.ca, handshakeTimeout: 15_000,
      // An all-zero mask makes ws skip masking here and unmasking on the server (~27 ms per 22 MB
      // update there without the native bufferutil). Masking guards HTTP proxies against payloads a
      // browser script chose; a site is not a browser, and over wss the bytes are encrypted anyway.
      generateMask: (mask) => void mask.fill(0),
    });
    this.ws = ws;
    this.authenticated = false;
    ws.on('open', () => {
      this.armWatchdog();
      const hello: SiteMessage = { type: 'hello', protocol: PROTOCOL_VERSION, token: this.opts.token, cases: this.opts.cases, software: this.opts.software };
      ws.send(JSON.stringify(hello));
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (ws !== this.ws) return;
      this.armWatchdog();
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      this.bytesReceived += bytes.length;
      try {
        if (isBinary) this.onBinary(bytes);
        else this.onText(bytes.toString('utf8'));
      } catch (err) {
        this.emit('protocol-error', errorMessage(err));
      }
    });
    let lastError = '';
    ws.on('error', (err) => {
      // 'close' follows and handles reconnection; the error (e.g. ECONNREFUSED, a bad certificate) is its reason.
      lastError = err.message;
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.authenticated = false;
      this.uploadTicket = null;
      if (this.watchdog) clearTimeout(this.watchdog);
      const why = `${code}${reason.length ? ` ${reason.toString()}` : lastError ? ` ${lastError}` : ''}`;
      if (code === CLOSE.authFailed) {
        // Usually already reported from the auth-failed message; report once. The close reason is the code.
        if (!this.refused) this.emit('refused', refusalFromClose(reason.toString()));
        this.refused = true;
        this.stopped = true;
        return;
      }
      if (this.stopped) return this.emit('disconnected', why, null);
      const delay = Math.round(this.backoffMs * (0.75 + Math.random() * 0.5));
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 30_000);
      this.emit('disconnected', why, delay);
      this.reconnectTimer = setTimeout(() => this.open(), delay);
    });
  }

  /** Drops a connection the server has gone silent on (no ping or message for 3 heartbeats). */
  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.ws?.terminate(), 3 * this.heartbeatMs);
  }

  private onText(text: string): void {
    const message = decodeJson(ServerMessageSchema, text);
    switch (message.type) {
      case 'welcome':
        if (message.protocol !== PROTOCOL_VERSION) {
          this.emit('refused', { code: 'protocol-version', reason: `server speaks protocol ${message.protocol}, this site ${PROTOCOL_VERSION}` });
          return this.stop();
        }
        this.authenticated = true;
        this.site = message.site;
        this.uploadTicket = message.uploadTicket;
        this.heartbeatMs = message.heartbeatMs;
        this.frameCap = Math.min(maxPayloadOf(this.opts), message.maxMessageBytes);
        this.backoffMs = this.opts.initialBackoffMs ?? 500;
        this.armWatchdog();
        this.emit('welcome', message.site, message.heartbeatMs);
        return;
      case 'auth-failed':
        this.stopped = true;
        this.refused = true;
        this.emit('refused', { code: message.code, reason: message.reason });
        return;
      case 'ping':
        this.send({ type: 'pong', t: message.t });
        return;
      default:
        this.emit('message', message);
    }
  }

  private onBinary(bytes: Buffer): void {
    if (!this.authenticated) throw new Error('binary frame before authentication; ignored');
    const { header, payload } = decodeFrame(bytes, this.frameCap);
    if (!isGlobal(header)) throw new Error(`unexpected ${header.kind} frame from the server`);
    this.emit('global', header, payload);
  }
}

function maxPayloadOf(opts: ClientOptions): number {
  return opts.maxMessageBytes ?? MAX_FRAME_BYTES;
}

function isGlobal(h: FrameHeader): h is GlobalFrameHeader {
  return h.kind === 'global';
}

/** A refusal known only from its close frame: the code is the reason; a server that sends none speaks another protocol. */
function refusalFromClose(reason: string): Refusal {
  const code = RefusalCodeSchema.safeParse(reason);
  if (code.success) return { code: code.data, reason: `refused (${code.data})` };
  return { code: 'protocol-version', reason: `the server closed the connection as refused${reason ? ` (${reason})` : ''}, with no reason this site understands` };
}
