/**
 * Runs the CPU-heavy part of an update's intake (server/update-intake.ts: SHA-256, decode, the
 * one-pass norm and finiteness check, ~20 ms for a default-size update) on worker threads, so the
 * event loop keeps receiving uploads and answering sites meanwhile, and several cores share the
 * intake. Frames lie in shared memory (the upload slots are SharedArrayBuffers), and so does the
 * global model (server/global-model.ts): nothing is copied to or from a worker. The
 * worker runs the same code the event loop ran before, so verdicts and norms are bit-identical.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { UpdateFrameHeader } from '../core/federation/protocol.js';
import type { UpdateContext } from '../core/federation/validate-update.js';
import type { ModelConfig } from '../core/model/config.js';
import { startWorker } from '../core/runtime/own-module.js';
import type { SharedGlobal } from './global-model.js';
import type { InspectedUpdate } from './update-intake.js';

export interface InspectorRequest {
  id: number;
  buffer: SharedArrayBuffer;
  byteOffset: number;
  byteLength: number;
  header: UpdateFrameHeader;
  ctx: Omit<UpdateContext, 'global'>;
  site: string;
  global: SharedGlobal;
}

export type InspectorReply =
  | { id: number; ok: true; sha256: string; norm: number; tensorOffset: number; tensorLength: number }
  | { id: number; ok: false; reason: string }
  | { id: number; error: string };

interface Pending {
  resolve(reply: InspectorReply): void;
  reject(err: Error): void;
}

interface InspectorThread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** One thread per core beyond the event loop's, at most 4: the upload slots (5) bound how many frames wait at once anyway. */
export function inspectorThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class UpdateInspector {
  private readonly threads: (InspectorThread | null)[];
  private nextId = 0;
  private closed = false;

  constructor(private readonly modelConfig: ModelConfig, threads = inspectorThreads()) {
    this.threads = Array.from({ length: threads }, () => null);
  }

  /**
   * Inspects an update frame's model file against `global` (the shared form of `ctx.global`);
   * `tensorBytes` of an accepted one views `payload`'s memory (or its shared copy).
   */
  inspect(payload: Uint8Array, header: UpdateFrameHeader, ctx: UpdateContext, global: SharedGlobal, site: string): Promise<InspectedUpdate> {
    if (this.closed) return Promise.reject(new Error('the server is stopping'));
    // The upload slots are shared already; anything else (tests, tools) is copied once.
    const frame = payload.buffer instanceof SharedArrayBuffer ? payload : sharedCopy(payload);
    const { global: _global, ...plain } = ctx;
    const thread = this.leastBusy();
    const id = this.nextId++;
    const request: InspectorRequest = {
      id, buffer: frame.buffer as SharedArrayBuffer, byteOffset: frame.byteOffset, byteLength: frame.byteLength, header, ctx: plain, site, global,
    };
    return new Promise<InspectorReply>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage(request);
    }).then((reply) => {
      if ('error' in reply) throw new Error(`update inspection failed: ${reply.error}`);
      if (!reply.ok) return { ok: false, reason: reply.reason };
      return { ok: true, sha256: reply.sha256, norm: reply.norm, tensorBytes: frame.subarray(reply.tensorOffset, reply.tensorOffset + reply.tensorLength) };
    });
  }

  /** Ends the threads; inspections still running fail. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.threads.filter((t): t is InspectorThread => t !== null);
    this.threads.fill(null);
    await Promise.all(running.map((t) => t.worker.terminate()));
  }

  /** An idle thread; else a new one while there is room; else the one with the fewest inspections queued. */
  private leastBusy(): InspectorThread {
    const running = this.threads.filter((t): t is InspectorThread => t !== null);
    const idle = running.find((t) => t.pending.size === 0);
    if (idle) return idle;
    const free = this.threads.indexOf(null);
    if (free >= 0) return (this.threads[free] = this.start(free));
    return running.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private start(index: number): InspectorThread {
    const worker = startWorker(new URL('./update-inspector-worker.js', import.meta.url), { workerData: this.modelConfig });
    // The server's sockets keep the process alive; an idle inspector must not.
    worker.unref();
    const thread: InspectorThread = { worker, pending: new Map() };
    worker.on('message', (reply: InspectorReply) => {
      const p = thread.pending.get(reply.id);
      thread.pending.delete(reply.id);
      p?.resolve(reply);
    });
    // A thread that fails takes only its own inspections down; the next inspection starts a new one.
    const fail = (err: Error) => {
      if (this.threads[index] === thread) this.threads[index] = null;
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`update inspector thread exited with code ${code}`)));
    return thread;
  }
}

function sharedCopy(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  copy.set(bytes);
  return copy;
}
