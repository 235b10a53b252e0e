/**
 * Worker thread of server/update-inspector.ts: inspects update frames (server/update-intake.ts) that
 * lie in shared memory, against the global model, also in shared memory. Nothing is copied either way.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelConfig } from '../core/model/config.js';
import { errorMessage } from '../core/errors.js';
import { viewsOf, type TensorList } from '../core/federation/tensors.js';
import { inspectUpdate } from './update-intake.js';
import type { SharedGlobal } from './global-model.js';
import type { InspectorReply, InspectorRequest } from './update-inspector.js';

const modelConfig = workerData as ModelConfig;
let global: { version: string; tensors: TensorList } | null = null;

function globalTensors(shared: SharedGlobal): TensorList {
  if (global?.version !== shared.version) global = { version: shared.version, tensors: viewsOf(shared.manifest, new Float32Array(shared.buffer)) };
  return global.tensors;
}

parentPort!.on('message', (m: InspectorRequest) => {
  let reply: InspectorReply;
  try {
    const payload = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
    const result = inspectUpdate(payload, m.header, { ...m.ctx, global: globalTensors(m.global) }, modelConfig, m.site);
    reply = result.ok
      ? { id: m.id, ok: true, sha256: result.sha256, norm: result.norm, tensorOffset: result.tensorBytes.byteOffset - payload.byteOffset, tensorLength: result.tensorBytes.byteLength }
      : { id: m.id, ok: false, reason: result.reason };
  } catch (err) {
    reply = { id: m.id, error: errorMessage(err) };
  }
  parentPort!.postMessage(reply);
});
