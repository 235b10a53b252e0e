/**
 * The mask generator: AES-256-CTR keyed by a 32-byte seed (zero IV; every seed masks one vector
 * once) expanded to elements of Z_{2^32}, added to or subtracted from a vector in place. Streams in
 * chunks, so a 5.6 M-element mask never exists as a whole.
 */
import { createCipheriv } from 'node:crypto';
import { FedSegError } from '../errors.js';

const CHUNK_ELEMENTS = 1 << 16;
const ZEROS = Buffer.alloc(4 * CHUNK_ELEMENTS);
const IV = Buffer.alloc(16);

/** target += sign * PRG(seed) elementwise, mod 2^32. */
export function applyMask(target: Uint32Array, seed: Uint8Array, sign: 1 | -1): void {
  if (seed.length !== 32) throw new FedSegError(`a mask seed is 32 bytes, got ${seed.length}`);
  const cipher = createCipheriv('aes-256-ctr', seed, IV);
  for (let start = 0; start < target.length; start += CHUNK_ELEMENTS) {
    const count = Math.min(CHUNK_ELEMENTS, target.length - start);
    const bytes = cipher.update(ZEROS.subarray(0, 4 * count));
    // Read the keystream in place when aligned (it normally is); copy otherwise.
    const chunk = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : new Uint32Array(Uint8Array.from(bytes).buffer);
    // Storing into a Uint32Array reduces mod 2^32 (ToUint32), negatives included.
    if (sign === 1) for (let i = 0; i < count; i++) target[start + i] += chunk[i];
    else for (let i = 0; i < count; i++) target[start + i] -= chunk[i];
  }
}
