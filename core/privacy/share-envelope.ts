/**
 * Sealed envelopes for Shamir shares that one site sends another through the server: AES-256-GCM
 * under a key the two sites agree on (X25519 + HKDF), with the round and both names as associated
 * data, so the server relays them without reading them and cannot redirect one to another site.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FedSegError } from '../errors.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

function associatedData(context: string, from: string, to: string): Buffer {
  return Buffer.from(JSON.stringify([context, from, to]), 'utf8');
}

export function sealEnvelope(key: Uint8Array, context: string, from: string, to: string, plaintext: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(associatedData(context, from, to));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

export function openEnvelope(key: Uint8Array, context: string, from: string, to: string, sealed: string): string {
  const bytes = Buffer.from(sealed, 'base64');
  if (bytes.length < IV_BYTES + TAG_BYTES) throw new FedSegError(`the share envelope from ${from} is too short`, { field: 'ciphertext' });
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
  decipher.setAAD(associatedData(context, from, to));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new FedSegError(`the share envelope from ${from} does not authenticate (tampered, or sealed for another site or round)`, { field: 'ciphertext' }, { cause: err });
  }
}
