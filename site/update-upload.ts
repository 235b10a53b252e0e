/**
 * The site's end of an update upload (server/update-upload.ts): one HTTP PUT of the update frame to
 * the server's UPLOAD_PATH, with the WebSocket session's upload ticket. It asks with
 * `Expect: 100-continue` and sends the body only once the server has checked the ticket and the size
 * and has a free slot for it; when every slot stays busy the server answers 503 and the upload is
 * tried again after Retry-After (with jitter), as long as the session it belongs to lasts. An upload
 * cut off on the way (the server drops one that stalls while others wait) is tried again, up to
 * RETRIES times.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { errorMessage } from '../core/errors.js';
import { UPLOAD_PATH } from '../core/federation/protocol.js';

const RETRIES = 3;

export interface UploadTarget {
  /** The site endpoint's ws:// or wss:// URL; the upload goes to the same origin over http(s). */
  wsUrl: string;
  ticket: string;
  /** Extra CA certificate to trust over https (as for the WebSocket). */
  ca?: string | Buffer;
  /** False once the session the ticket belongs to has ended: no more retries. */
  live: () => boolean;
}

export function uploadUrl(wsUrl: string): URL {
  const url = new URL(UPLOAD_PATH, wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  return url;
}

/** Resolves once the server has taken the frame in (its verdict comes over the WebSocket); throws with the server's reason otherwise. */
export async function uploadFrame(target: UploadTarget, frame: Uint8Array): Promise<void> {
  const url = uploadUrl(target.wsUrl);
  const pause = (seconds: number) => new Promise((r) => setTimeout(r, 1000 * seconds * (0.5 + Math.random())));
  for (let failures = 0; ;) {
    let res;
    try {
      res = await put(url, target, frame);
    } catch (err) {
      if (++failures > RETRIES || !target.live()) throw new Error(`update upload failed: ${errorMessage(err)}`);
      await pause(failures);
      continue;
    }
    if (res.status === 200) return;
    if (res.status === 503 && target.live()) {
      const seconds = Number(res.retryAfter ?? '1');
      await pause(Number.isFinite(seconds) ? seconds : 1);
      continue;
    }
    throw new Error(`update upload refused with HTTP ${res.status}: ${reasonOf(res.body)}`);
  }
}

function reasonOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: report it as sent
  }
  return body.slice(0, 200);
}

function put(url: URL, target: UploadTarget, frame: Uint8Array): Promise<{ status: number; body: string; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      method: 'PUT',
      headers: { authorization: `Bearer ${target.ticket}`, 'content-type': 'application/octet-stream', 'content-length': String(frame.byteLength), expect: '100-continue' },
    };
    const req = url.protocol === 'https:' ? httpsRequest(url, { ...options, ca: target.ca }) : httpRequest(url, options);
    req.on('continue', () => req.end(frame));
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfter: res.headers['retry-after'] });
        // A refusal comes before the body was sent; the request is over either way.
        req.destroy();
      });
    });
    req.on('error', reject);
  });
}
