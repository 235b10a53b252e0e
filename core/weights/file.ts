import { readFile } from 'node:fs/promises';
import { FedSegError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import type { ModelConfig } from '../model/config.js';
import { decodeModel, encodeModel, type DecodedModel, type ModelMeta } from './codec.js';
import type { NamedTensor } from './types.js';

/** Writes a model file atomically (tmp + rename); returns the hex SHA-256 of its contents. */
export async function saveModelFile(path: string, config: ModelConfig, tensors: readonly NamedTensor[], meta: ModelMeta = {}): Promise<string> {
  const bytes = encodeModel(config, tensors, meta);
  await writeFileAtomic(path, bytes);
  return Buffer.from(bytes.subarray(bytes.length - 32)).toString('hex');
}

/** Reads and verifies a model file; errors name the file and the reason. */
export async function loadModelFile(path: string, options: { expectConfig?: ModelConfig } = {}): Promise<DecodedModel> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FedSegError(code === 'ENOENT' ? 'model file not found' : `cannot read model file (${code ?? 'error'})`, { file: path }, { cause: err });
  }
  return decodeModel(bytes, { ...options, source: path });
}
