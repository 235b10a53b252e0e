import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Site and admin tokens: 32 random bytes, base64url. Only SHA-256 of a token is stored; with 256
 * bits of entropy a fast hash is as safe as a slow KDF and lets the server look a site up by hash.
 * A token never starts with "-" or "_": one starting with "-" reads as an option on a command line
 * (`--token "$T"` breaks), so such draws are discarded (about 1 in 32; the rest keep 256 bits).
 */
export function newToken(): string {
  for (;;) {
    const token = randomBytes(32).toString('base64url');
    if (/^[A-Za-z0-9]/.test(token)) return token;
  }
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time check of a presented token against a stored hash. */
export function tokenMatches(token: string, storedHash: string): boolean {
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
