/**
 * Local admin passphrase: scrypt hash with a random salt, compared in constant time; a strength rule for new
 * passphrases; and exponential back-off after wrong guesses (kept in settings, so a restart does not reset it).
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { PassphraseHash } from './site-store.js';

const COST = 1 << 14;
export const MIN_PASSPHRASE_LENGTH = 12;
/** Wrong guesses allowed before the back-off starts; then 1 s, 2 s, 4 s, ... up to MAX_BACKOFF_S. */
const FREE_ATTEMPTS = 2;
const MAX_BACKOFF_S = 15 * 60;

export function hashPassphrase(passphrase: string): PassphraseHash {
  const salt = randomBytes(16);
  return { salt: salt.toString('hex'), hash: scryptSync(passphrase, salt, 32, { N: COST }).toString('hex'), n: COST };
}

export function verifyPassphrase(passphrase: string, stored: PassphraseHash): boolean {
  const expected = Buffer.from(stored.hash, 'hex');
  const actual = scryptSync(passphrase, Buffer.from(stored.salt, 'hex'), expected.length, { N: stored.n });
  return timingSafeEqual(actual, expected);
}

/** Why a new passphrase is too weak, or null: long enough, two kinds of character, not one repeated pattern. */
export function passphraseProblem(passphrase: string): string | null {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) return `use at least ${MIN_PASSPHRASE_LENGTH} characters`;
  const kinds = [/[a-z]/i, /\d/, /[^a-z\d]/i].filter((kind) => kind.test(passphrase)).length;
  if (kinds < 2) return 'mix at least two of letters, digits and spaces or symbols';
  if (new Set(passphrase.toLowerCase()).size < 6) return 'use at least 6 different characters';
  return null;
}

export interface Throttle { failures: number; lockedUntil: number }

/** Seconds to wait before the next attempt is accepted (0: now). */
export function waitSeconds(throttle: Throttle, now: number): number {
  return Math.max(0, Math.ceil((throttle.lockedUntil - now) / 1000));
}

/** The throttle after a wrong guess: the lock doubles with each failure past the free ones. */
export function afterFailure(throttle: Throttle, now: number): Throttle {
  const failures = throttle.failures + 1;
  const backoff = failures > FREE_ATTEMPTS ? Math.min(MAX_BACKOFF_S, 2 ** (failures - FREE_ATTEMPTS - 1)) : 0;
  return { failures, lockedUntil: now + backoff * 1000 };
}
