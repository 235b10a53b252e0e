import type { WebSocket } from 'ws';
import { CLOSE, ServerMessageSchema, type ServerMessage } from '../core/federation/protocol.js';

/** One WebSocket peer: unauthenticated until its `hello` carries a valid site token. */
export class SiteConnection {
  site: string | null = null;
  declaredTrain = 0;
  /** Training cases the operator registered for this site (null: none registered). */
  registeredCases: number | null = null;
  declaredValidation = 0;
  lastSeen = Date.now();
  readonly connectedAt = Date.now();
  bytesSent = 0;
  bytesReceived = 0;
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
  constructor(readonly ws: WebSocket, readonly remote: string, readonly ip: string) {}

  get authenticated(): boolean {
    return this.site !== null;
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Sends a control message; validated so the server can never emit something off-protocol. */
  send(message: ServerMessage): void {
    if (!this.open) return;
    const text = JSON.stringify(ServerMessageSchema.parse(message));
    this.bytesSent += Buffer.byteLength(text);
    this.ws.send(text);
  }

  /** Sends a binary weight frame; refused (by construction) before authentication. */
  sendFrame(frame: Buffer, modelHash: string): void {
    if (!this.open || !this.authenticated) return;
    this.lastGlobalHash = modelHash;
    this.bytesSent += frame.length;
    this.ws.send(frame, { binary: true });
  }

  close(code: number = CLOSE.protocolError, reason = ''): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason.slice(0, 120));
  }
}
