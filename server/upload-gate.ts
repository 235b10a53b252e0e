/**
 * Bounds how many weight frames the server holds at once. ws buffers a whole message before handing
 * it over, so a hundred sites uploading 22 MB updates at the same moment would hold 2.2 GB; here a
 * connection that has sent more than `thresholdBytes` of an unfinished message takes one of
 * `slots` upload slots, or waits with its socket paused (TCP then holds the site back), and keeps
 * the slot until the server is done with the frame (validated and spooled), not merely received
 * it. A connection whose upload has stalled mid-frame for `stallMs` while others wait is closed,
 * freeing its slot and the part of the frame it had sent, so a site that trickles its frame can
 * neither block the rest nor make the server hold more frames than there are slots.
 */
import type { WebSocket } from 'ws';

interface Upload {
  ws: WebSocket;
  /** Bytes received since the connection's last complete message. */
  unfinished: number;
  lastData: number;
}

export class UploadGate {
  private readonly uploads = new Map<WebSocket, Upload>();
  private readonly active = new Set<Upload>();
  private readonly waiting: Upload[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastCheck = 0;

  constructor(readonly slots: number, private readonly thresholdBytes: number, private readonly stallMs: number) {}

  /** Call for every chunk the connection's socket delivers. */
  data(ws: WebSocket, bytes: number): void {
    let u = this.uploads.get(ws);
    if (!u) this.uploads.set(ws, (u = { ws, unfinished: 0, lastData: 0 }));
    u.unfinished += bytes;
    u.lastData = Date.now();
    if (u.unfinished <= this.thresholdBytes || this.active.has(u) || this.waiting.includes(u)) return;
    if (this.active.size < this.slots) {
      this.active.add(u);
      return;
    }
    ws.pause();
    this.waiting.push(u);
    if (!this.timer) {
      this.lastCheck = Date.now();
      this.timer = setInterval(() => this.closeStalled(), this.checkEveryMs).unref();
    }
  }

  /** Call when a message has arrived complete: the next bytes start a new one. */
  arrived(ws: WebSocket): void {
    const u = this.uploads.get(ws);
    if (u) u.unfinished = 0;
  }

  /** Call when the server is done with a message (for a weight frame: validated and spooled). */
  handled(ws: WebSocket): void {
    const u = this.uploads.get(ws);
    if (u && this.active.delete(u)) this.admitNext();
  }

  /** Call when the connection closes. */
  closed(ws: WebSocket): void {
    const u = this.uploads.get(ws);
    if (!u) return;
    this.uploads.delete(ws);
    const at = this.waiting.indexOf(u);
    if (at >= 0) this.waiting.splice(at, 1);
    this.active.delete(u);
    this.admitNext();
  }

  private admitNext(): void {
    while (this.active.size < this.slots && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      next.lastData = Date.now();
      this.active.add(next);
      next.ws.resume();
    }
    if (this.waiting.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private get checkEveryMs(): number {
    return Math.max(100, this.stallMs / 4);
  }

  private closeStalled(): void {
    const now = Date.now();
    // When this check itself ran late, the server was busy and did not read: no site stalled.
    const late = now - this.lastCheck > 2 * this.checkEveryMs;
    this.lastCheck = now;
    for (const u of this.active) {
      if (late) u.lastData = now;
      // A frame that has arrived and is being processed is not stalled.
      else if (this.waiting.length > 0 && u.unfinished > 0 && now - u.lastData >= this.stallMs) u.ws.terminate();
    }
  }
}
