/**
 * X25519 key agreement (RFC 7748, node:crypto) and HKDF-SHA256 (RFC 5869) to derive per-purpose
 * 32-byte keys from the shared secret. Keys travel raw (32 bytes, base64) so Shamir can share a
 * private key as one secret and a recovered private key can be checked against its public key.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { FedSegError } from '../errors.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const KEY_BYTES = 32;

export interface KeyPair {
  /** Raw 32-byte private key. */
  privateKey: Uint8Array;
  /** Raw 32-byte public key, base64. */
  publicKey: string;
}

export function generateKeyPair(): KeyPair {
  const pair = generateKeyPairSync('x25519');
  return {
    privateKey: new Uint8Array(pair.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length)),
    publicKey: pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('base64'),
  };
}

function privateKeyObject(raw: Uint8Array) {
  if (raw.length !== KEY_BYTES) throw new FedSegError(`an X25519 private key is ${KEY_BYTES} bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(base64: string, field: string) {
  const raw = Buffer.from(base64, 'base64');
  if (raw.length !== KEY_BYTES || raw.toString('base64') !== base64) throw new FedSegError(`not a base64 X25519 public key of ${KEY_BYTES} bytes`, { field });
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The public key (base64) of a raw private key: checks a private key recovered from shares. */
export function publicKeyOf(privateKey: Uint8Array): string {
  return createPublicKey(privateKeyObject(privateKey)).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('base64');
}

/** Throws a FedSegError naming `field` unless `base64` is a valid X25519 public key. */
export function checkPublicKey(base64: string, field: string): void {
  publicKeyObject(base64, field);
}

/**
 * A 32-byte key for `purpose` shared by the holders of (privateKey, peer's public key) and of
 * (peer's private key, publicKey): X25519, then HKDF with the round's context as salt, so keys of
 * different rounds and purposes are independent.
 */
export function agreeKey(privateKey: Uint8Array, peerPublicKey: string, context: string, purpose: string): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(peerPublicKey, 'publicKey') });
  } catch (err) {
    // OpenSSL refuses small-order points (all-zero shared secret).
    if (err instanceof FedSegError) throw err;
    throw new FedSegError(`X25519 key agreement failed: ${(err as Error).message}`, { field: 'publicKey' }, { cause: err });
  }
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(context, 'utf8'), Buffer.from(`fedseg secagg ${purpose}`, 'utf8'), KEY_BYTES));
}
