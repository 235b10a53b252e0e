/**
 * One site's connection: its socket, what it has been sent and owes, its byte counts and its
 * heartbeat. Unauthenticated until its `hello` carries a valid site token (server/site-registry.ts).
 * The socket is whatever server/transport.ts adapts; nothing here knows the WebSocket library.
 */
import { EventEmitter } from 'node:events';
import { CLOSE, ServerMessageSchema, type ServerMessage } from '../core/federation/protocol.js';

/** Bytes a connection may send before its hello is verified (a hello is well under 1 KiB). */
const PRE_AUTH_MAX_BYTES = 64 * 1024;

/** What a connection needs of its socket. */
export interface SiteSocket {
  readonly open: boolean;
  sendText(text: string): void;
  sendBinary(frame: Buffer): void;
  /** Closes with a handshake, if the socket is open or opening. */
  close(code: number, reason: string): void;
  /** Drops the socket at once, reading nothing more. */
  terminate(): void;
}

export interface ConnectionEvents {
  message: [bytes: Buffer, isBinary: boolean];
  /** More than PRE_AUTH_MAX_BYTES arrived before authentication. */
  'pre-auth-overflow': [reason: string];
  'socket-error': [error: { message: string; oversized: boolean }];
  closed: [code: number];
}

export class SiteConnection extends EventEmitter<ConnectionEvents> {
  site: string | null = null;
  declaredTrain = 0;
  /** Training cases the operator registered for this site (null: none registered). */
  registeredCases: number | null = null;
  declaredValidation = 0;
  lastSeen = Date.now();
  readonly connectedAt = Date.now();
  bytesSent = 0;
  bytesReceived = 0;
  private preAuthBytes = 0;
  /** Rounds whose global model was sent to evaluate and whose evaluation has not arrived. */
  readonly evaluationsOwed = new Set<number>();
  /** Round whose weights were last resent on request (one resend per round). */
  resentRound: number | null = null;
  protocolErrors = 0;
  /** Set when the operator removed this site: nothing it sends is handled any more. */
  revoked = false;
  /** Hash of the last global model sent on this connection, so it need not be sent again to train on. */
  lastGlobalHash: string | null = null;

  /** `remote` is address:port for the log; `ip` keys the failed-login limiter. */
  constructor(private readonly socket: SiteSocket, readonly remote: string, readonly ip: string) {
    super();
  }

  get authenticated(): boolean {
    return this.site !== null;
  }

  get open(): boolean {
    return this.socket.open;
  }

  /** Who this connection is, for the audit log. */
  get actor(): string {
    return this.site ?? `unauthenticated ${this.remote}`;
  }

  /**
   * Counts raw bytes as they arrive, before they form a message; returns true once the connection
   * is authenticated and they need counting no more. Until hello is verified a connection may send
   * PRE_AUTH_MAX_BYTES in all: a 900 KiB "hello" is cut off after 64 KiB instead of being buffered
   * and parsed.
   */
  dataArrived(bytes: number): boolean {
    if (this.authenticated) return true;
    this.preAuthBytes += bytes;
    if (this.preAuthBytes > PRE_AUTH_MAX_BYTES && this.preAuthBytes - bytes <= PRE_AUTH_MAX_BYTES) {
      this.emit('pre-auth-overflow', `sent more than ${PRE_AUTH_MAX_BYTES} bytes before authenticating`);
    }
    return false;
  }

  /** Counts a complete message in; false when the connection is revoked and the message is to be ignored. */
  messageArrived(bytes: number): boolean {
    if (this.revoked) return false;
    this.lastSeen = Date.now();
    this.bytesReceived += bytes;
    return true;
  }

  /**
   * One heartbeat: a site silent for longer than `limitMs` is dropped (returns how long it was
   * silent), any other authenticated one is pinged.
   */
  heartbeat(now: number, limitMs: number): number | null {
    if (!this.authenticated) return null;
    const silentMs = now - this.lastSeen;
    if (silentMs > limitMs) {
      this.socket.terminate();
      return silentMs;
    }
    this.send({ type: 'ping', t: now });
    return null;
  }

  /** Sends a control message; validated so the server can never emit something off-protocol. */
  send(message: ServerMessage): void {
    if (!this.open) return;
    const text = JSON.stringify(ServerMessageSchema.parse(message));
    this.bytesSent += Buffer.byteLength(text);
    this.socket.sendText(text);
  }

  /** Sends a binary weight frame; refused (by construction) before authentication. */
  sendFrame(frame: Buffer, modelHash: string): void {
    if (!this.open || !this.authenticated) return;
    this.lastGlobalHash = modelHash;
    this.bytesSent += frame.length;
    this.socket.sendBinary(frame);
  }

  close(code: number = CLOSE.protocolError, reason = ''): void {
    this.socket.close(code, reason.slice(0, 120));
  }

  terminate(): void {
    this.socket.terminate();
  }
}
