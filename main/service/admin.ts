/** Local admin passphrase: scrypt hash with a random salt, compared in constant time. */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { PassphraseHash } from './site-store.js';

const COST = 1 << 14;

export function hashPassphrase(passphrase: string): PassphraseHash {
  const salt = randomBytes(16);
  return { salt: salt.toString('hex'), hash: scryptSync(passphrase, salt, 32, { N: COST }).toString('hex'), n: COST };
}

export function verifyPassphrase(passphrase: string, stored: PassphraseHash): boolean {
  const expected = Buffer.from(stored.hash, 'hex');
  const actual = scryptSync(passphrase, Buffer.from(stored.salt, 'hex'), expected.length, { N: stored.n });
  return timingSafeEqual(actual, expected);
}
