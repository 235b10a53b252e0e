/**
 * Site updates arrive by HTTP PUT to UPLOAD_PATH, not as WebSocket messages: ws hands a message over
 * only once it has copied it whole into a fresh buffer (a 22.6 MB default-size update: ~80 ms of page
 * faults, and garbage that lingers until V8 collects it, hundreds of MB with a hundred sites), while a
 * request body streams. The site presents the upload ticket its WebSocket session got in `welcome`
 * (`Authorization: Bearer <ticket>`) and asks with `Expect: 100-continue`, so the ticket, the frame
 * cap (Content-Length) and a free upload slot are all checked before a byte of the body is read.
 * Each slot owns one frame-sized buffer in shared memory, reused for every upload it takes: the body is
 * copied into it as it streams, then the federation hashes and validates it on a worker thread
 * (server/update-inspector.ts) and spools it (and answers the site over its WebSocket, as before), and
 * the slot takes the next upload. Memory for uploads is
 * slots x frame cap, however many sites there are. An upload that waits longer than `queueMs` for a
 * slot is answered 503 with Retry-After; one that stops sending for `stallMs` is cut off (the site
 * retries it).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SiteConnection } from './connection.js';
import type { FailureLimiter } from './rate-limit.js';

function digest(ticket: string): string {
  return createHash('sha256').update(ticket, 'utf8').digest('hex');
}

/** One ticket per authenticated WebSocket session, valid while that session is open and its site not removed. */
export class UploadTickets {
  // Keyed by the ticket's SHA-256, so looking one up reveals nothing about stored tickets through timing.
  private readonly byDigest = new Map<string, SiteConnection>();
  private readonly digestOf = new Map<SiteConnection, string>();

  issue(c: SiteConnection): string {
    this.revoke(c);
    const ticket = randomBytes(32).toString('base64url');
    const d = digest(ticket);
    this.byDigest.set(d, c);
    this.digestOf.set(c, d);
    return ticket;
  }

  holder(ticket: string): SiteConnection | null {
    const c = this.byDigest.get(digest(ticket));
    return c && c.open && c.authenticated && !c.revoked ? c : null;
  }

  revoke(c: SiteConnection): void {
    const d = this.digestOf.get(c);
    if (d === undefined) return;
    this.byDigest.delete(d);
    this.digestOf.delete(c);
  }
}

/** Takes in one uploaded frame (a view of the slot's shared memory, valid until the promise settles). */
export type ReceiveUpdate = (c: SiteConnection, frame: Uint8Array) => Promise<void> | void;

export interface UploadLimits {
  /** Uploads received and processed at once (each holds a buffer of `frameCap` bytes). */
  slots: number;
  frameCap: number;
  stallMs: number;
  queueMs: number;
}

interface Waiter {
  grant(buffer: Uint8Array): void;
}

export class UpdateUploads {
  private readonly free: Uint8Array[] = [];
  private allocated = 0;
  private readonly queue: Waiter[] = [];
  /** Connections with an upload queued or in progress: one at a time each. */
  private readonly busy = new Set<SiteConnection>();

  constructor(
    private readonly tickets: UploadTickets, private readonly receive: ReceiveUpdate, private readonly authFailures: FailureLimiter,
    private readonly limits: UploadLimits, private readonly log: (line: string) => void,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const ip = req.socket.remoteAddress ?? '';
    if (req.method !== 'PUT') return refuse(res, 405, `use PUT to upload an update`, { allow: 'PUT' });
    if (this.authFailures.blocked(ip)) return refuse(res, 429, 'too many failed logins from this address; try again later', { 'retry-after': String(this.authFailures.retryAfterS(ip)) });
    const auth = req.headers.authorization;
    const c = auth?.startsWith('Bearer ') ? this.tickets.holder(auth.slice(7).trim()) : null;
    if (!c) {
      this.authFailures.fail(ip);
      return refuse(res, 401, 'unknown upload ticket: it is the one sent in welcome, valid while that WebSocket session is open');
    }
    const declared = req.headers['content-length'];
    const length = declared !== undefined && /^\d{1,12}$/.test(declared) ? Number(declared) : null;
    if (length === null || req.headers['transfer-encoding'] !== undefined) return refuse(res, 411, 'an upload needs a Content-Length');
    if (length > this.limits.frameCap) return refuse(res, 413, `an update frame of ${length} bytes exceeds the ${this.limits.frameCap}-byte cap of this federation's model`);
    if (this.busy.has(c)) return refuse(res, 409, 'an upload from this site is already in progress');
    this.busy.add(c);
    let waiting: Waiter | null = null;
    const gone = () => {
      if (!waiting) return;
      this.queue.splice(this.queue.indexOf(waiting), 1);
      this.busy.delete(c);
    };
    const start = (buffer: Uint8Array) => {
      req.off('close', gone);
      waiting = null;
      this.read(c, req, res, length, buffer);
    };
    const buffer = this.free.pop() ?? (this.allocated < this.limits.slots ? (this.allocated++, new Uint8Array(new SharedArrayBuffer(this.limits.frameCap))) : null);
    if (buffer) return start(buffer);
    const timer = setTimeout(() => {
      gone();
      refuse(res, 503, 'every upload slot is busy; retry', { 'retry-after': '1' });
    }, this.limits.queueMs);
    waiting = {
      grant: (b) => {
        clearTimeout(timer);
        start(b);
      },
    };
    this.queue.push(waiting);
    req.once('close', gone);
  }

  private read(c: SiteConnection, req: IncomingMessage, res: ServerResponse, length: number, buffer: Uint8Array): void {
    let filled = 0;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(stall);
      this.busy.delete(c);
      const next = this.queue.shift();
      if (next) next.grant(buffer);
      else this.free.push(buffer);
    };
    const stall = setTimeout(() => req.destroy(), this.limits.stallMs);
    req.on('data', (chunk: Buffer) => {
      stall.refresh();
      buffer.set(chunk, filled);
      filled += chunk.length;
      c.bytesReceived += chunk.length;
      c.lastSeen = Date.now();
    });
    // A body cut short (the site disconnected, or stalled) frees the slot without being looked at.
    req.once('close', () => {
      if (filled < length) release();
    });
    req.once('end', () => {
      clearTimeout(stall);
      void (async () => {
        try {
          await this.receive(c, buffer.subarray(0, length));
          answer(res, 200, { received: length });
        } catch (err) {
          this.log(`internal error taking in an upload from ${c.site}: ${err instanceof Error ? err.message : String(err)}`);
          answer(res, 500, { error: 'the server could not take in the update' });
        } finally {
          release();
        }
      })();
    });
    if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue();
  }
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** Answers before the body is read; the connection closes, so an unread body is never taken in. */
function refuse(res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  answer(res, status, { error }, { connection: 'close', ...headers });
}
