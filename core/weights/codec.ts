import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FedSegError } from '../errors.js';
import { ModelConfigSchema, type ModelConfig } from '../model/config.js';
import { parameterSpecs } from '../model/parameters.js';
import { elementCount, type NamedTensor } from './types.js';

/**
 * FedSeg model file / wire encoding, version 1 (all integers and floats little-endian):
 *
 *   magic "FSEGM1\0\0" (8 bytes) | u32 header length | header JSON (UTF-8) | zero padding to a
 *   multiple of 8 | float32 tensor data in manifest order | SHA-256 of every preceding byte (32 bytes)
 *
 * The header carries the architecture config, its hash and the ordered tensor manifest. Pure
 * (node:crypto + zod, no TensorFlow) so the aggregation server can use it.
 */
export const MODEL_MAGIC = new Uint8Array([0x46, 0x53, 0x45, 0x47, 0x4d, 0x31, 0x00, 0x00]);
const PREFIX_BYTES = MODEL_MAGIC.length + 4;
const HASH_BYTES = 32;
const MAX_HEADER_BYTES = 16 * 1024 * 1024;

const MetaValueSchema = z.union([z.string().max(1000), z.number(), z.boolean()]);
const MetaSchema = z.record(z.string().max(100), MetaValueSchema);
/** Free-form provenance (round, seed, epochs, ...). Never put case ids or file names here. */
export type ModelMeta = z.infer<typeof MetaSchema>;

const ManifestEntrySchema = z
  .object({ name: z.string().min(1), shape: z.array(z.int().nonnegative()), dtype: z.literal('float32') })
  .strict();

const HeaderSchema = z
  .object({
    format: z.literal('fedseg-model'),
    version: z.literal(1),
    architectureHash: z.string().regex(/^[0-9a-f]{64}$/),
    config: ModelConfigSchema,
    tensors: z.array(ManifestEntrySchema),
    meta: MetaSchema,
  })
  .strict();
type Header = z.infer<typeof HeaderSchema>;

export interface DecodedModel {
  config: ModelConfig;
  tensors: NamedTensor[];
  /** Hex SHA-256 of the encoded contents (the file's trailer). */
  sha256: string;
  architectureHash: string;
  meta: ModelMeta;
  /** The float32 tensor data exactly as encoded (little-endian, manifest order): a view of the input bytes. */
  tensorBytes: Uint8Array;
}

export interface DecodeOptions {
  /** Reject the model unless its architecture equals this one. */
  expectConfig?: ModelConfig;
  /** File name or peer to name in errors. */
  source?: string;
  /**
   * Tensors view the input bytes instead of copying them, where the data is 4-byte aligned (the
   * server's update intake: one 22 MB copy less per update). The caller must then leave the input
   * unmodified while it uses the tensors.
   */
  shareMemory?: boolean;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Fields that define the weights and the forward pass, in canonical order (inputShape is only a window size). */
function canonicalArchitecture(config: ModelConfig) {
  return {
    arch: config.arch,
    inChannels: config.inChannels,
    numClasses: config.numClasses,
    baseFilters: config.baseFilters,
    depth: config.depth,
    dropout: config.dropout,
    upsampling: config.upsampling,
    downsample: config.downsample,
    tensors: parameterSpecs(config).map(({ name, shape }) => ({ name, shape })),
  };
}

/** Stable hex SHA-256 of the architecture (config fields that matter + manifest names/shapes). */
export function architectureHash(config: ModelConfig): string {
  return sha256Hex(new TextEncoder().encode(JSON.stringify(canonicalArchitecture(config))));
}

/** Names of the architecture fields where `a` and `b` differ (empty when compatible). */
export function architectureDifferences(a: ModelConfig, b: ModelConfig): string[] {
  const ca = canonicalArchitecture(a) as Record<string, unknown>;
  const cb = canonicalArchitecture(b) as Record<string, unknown>;
  return Object.keys(ca).filter((k) => JSON.stringify(ca[k]) !== JSON.stringify(cb[k]));
}

function sha256Hex(...parts: Uint8Array[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/** Checks that `tensors` are exactly the architecture's parameters, in order, with matching shapes and sizes. */
export function checkTensorsMatch(config: ModelConfig, tensors: readonly NamedTensor[], source?: string): void {
  const specs = parameterSpecs(config);
  if (tensors.length !== specs.length) {
    throw new FedSegError(`architecture has ${specs.length} tensors but ${tensors.length} were given`, { file: source, field: 'tensors' });
  }
  specs.forEach((spec, i) => {
    const t = tensors[i];
    if (t.name !== spec.name) {
      throw new FedSegError(`tensor #${i} is "${t.name}", architecture expects "${spec.name}"`, { file: source, field: 'tensors' });
    }
    if (JSON.stringify(t.shape) !== JSON.stringify(spec.shape)) {
      throw new FedSegError(`tensor "${t.name}" has shape [${t.shape}], architecture expects [${spec.shape}]`, { file: source, field: t.name });
    }
    if (t.data.length !== elementCount(spec.shape)) {
      throw new FedSegError(`tensor "${t.name}" has ${t.data.length} values, shape [${spec.shape}] needs ${elementCount(spec.shape)}`, { file: source, field: t.name });
    }
  });
}

function paddedHeaderEnd(headerBytes: number): number {
  return Math.ceil((PREFIX_BYTES + headerBytes) / 8) * 8;
}

/** Encodes a model; the tensors must match `parameterSpecs(config)` exactly. */
export function encodeModel(config: ModelConfig, tensors: readonly NamedTensor[], meta: ModelMeta = {}): Uint8Array {
  const parsedConfig = ModelConfigSchema.parse(config);
  checkTensorsMatch(parsedConfig, tensors);
  const header: Header = {
    format: 'fedseg-model',
    version: 1,
    architectureHash: architectureHash(parsedConfig),
    config: parsedConfig,
    tensors: tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: 'float32' })),
    meta: MetaSchema.parse(meta),
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = paddedHeaderEnd(headerBytes.length);
  const floats = tensors.reduce((n, t) => n + t.data.length, 0);
  const out = new Uint8Array(dataStart + floats * 4 + HASH_BYTES);
  const view = new DataView(out.buffer);
  out.set(MODEL_MAGIC, 0);
  view.setUint32(MODEL_MAGIC.length, headerBytes.length, true);
  out.set(headerBytes, PREFIX_BYTES);
  let offset = dataStart;
  for (const { data } of tensors) {
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    } else {
      data.forEach((v, i) => view.setFloat32(offset + 4 * i, v, true));
    }
    offset += data.byteLength;
  }
  out.set(Buffer.from(sha256Hex(out.subarray(0, offset)), 'hex'), offset);
  return out;
}

/** Decodes and verifies a model (magic, length, SHA-256, manifest vs architecture, optional expected architecture). */
export function decodeModel(bytes: Uint8Array, options: DecodeOptions = {}): DecodedModel {
  const where = { file: options.source };
  const fail = (message: string, field?: string): never => {
    throw new FedSegError(message, { ...where, field });
  };
  if (bytes.length < PREFIX_BYTES) fail(`truncated: ${bytes.length} bytes is shorter than the ${PREFIX_BYTES}-byte prefix`);
  if (!MODEL_MAGIC.every((b, i) => bytes[i] === b)) fail('not a FedSeg model file (wrong magic bytes)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(MODEL_MAGIC.length, true);
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupted file)`);
  if (PREFIX_BYTES + headerLength + HASH_BYTES > bytes.length) {
    fail(`truncated: header needs ${PREFIX_BYTES + headerLength} bytes, file has ${bytes.length}`);
  }
  const trailerMatches = () =>
    sha256Hex(bytes.subarray(0, bytes.length - HASH_BYTES)) === Buffer.from(bytes.subarray(bytes.length - HASH_BYTES)).toString('hex');

  let header: Header;
  try {
    const json: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength)));
    const parsed = HeaderSchema.safeParse(json);
    if (!parsed.success) throw new Error(z.prettifyError(parsed.error).replace(/\n/g, ' '));
    header = parsed.data;
  } catch (err) {
    if (!trailerMatches()) fail('SHA-256 mismatch: the file is corrupted or truncated');
    return fail(`invalid header: ${(err as Error).message}`, 'header');
  }

  const dataStart = paddedHeaderEnd(headerLength);
  const floats = header.tensors.reduce((n, t) => n + elementCount(t.shape), 0);
  const expectedLength = dataStart + floats * 4 + HASH_BYTES;
  if (bytes.length < expectedLength) fail(`truncated: expected ${expectedLength} bytes, got ${bytes.length}`);
  if (bytes.length > expectedLength) fail(`${bytes.length - expectedLength} unexpected bytes after the end of the model`);
  const sha256 = Buffer.from(bytes.subarray(bytes.length - HASH_BYTES)).toString('hex');
  if (!trailerMatches()) fail('SHA-256 mismatch: the file is corrupted');

  const hash = architectureHash(header.config);
  if (hash !== header.architectureHash) fail('architecture hash in the header does not match its config', 'architectureHash');
  const specs = parameterSpecs(header.config);
  if (specs.length !== header.tensors.length) {
    fail(`manifest lists ${header.tensors.length} tensors, the ${header.config.arch} architecture has ${specs.length}`, 'tensors');
  }
  specs.forEach((spec, i) => {
    const entry = header.tensors[i];
    if (entry.name !== spec.name || JSON.stringify(entry.shape) !== JSON.stringify(spec.shape)) {
      fail(`manifest entry #${i} "${entry.name}" [${entry.shape}] does not match the architecture's "${spec.name}" [${spec.shape}]`, 'tensors');
    }
  });
  if (options.expectConfig) {
    const diff = architectureDifferences(options.expectConfig, header.config);
    if (diff.length > 0) {
      const show = (c: ModelConfig) => diff.map((k) => `${k}=${k === 'tensors' ? '…' : JSON.stringify((c as Record<string, unknown>)[k])}`).join(', ');
      fail(`architecture mismatch: expected ${show(options.expectConfig)}, file has ${show(header.config)}`, diff[0]);
    }
  }

  const tensorBytes = bytes.subarray(dataStart, dataStart + floats * 4);
  const share = options.shareMemory === true && LITTLE_ENDIAN_HOST && (bytes.byteOffset + dataStart) % 4 === 0;
  let offset = dataStart;
  const tensors = header.tensors.map(({ name, shape }) => {
    const n = elementCount(shape);
    let data: Float32Array;
    if (share) {
      data = new Float32Array(bytes.buffer, bytes.byteOffset + offset, n);
    } else if (LITTLE_ENDIAN_HOST) {
      // Copy (not a view): Buffer.slice shares memory, and the source may be unaligned.
      data = new Float32Array(n);
      new Uint8Array(data.buffer).set(bytes.subarray(offset, offset + 4 * n));
    } else {
      data = Float32Array.from({ length: n }, (_, i) => view.getFloat32(offset + 4 * i, true));
    }
    offset += 4 * n;
    return { name, shape, data };
  });
  return { config: header.config, tensors, sha256, architectureHash: hash, meta: header.meta, tensorBytes };
}
