import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { FedSegError } from '../core/errors.js';

/**
 * Site and admin tokens. Generated ones are 32 random bytes, base64url, and never start with "-" or
 * "_": one starting with "-" reads as an option on a command line (`--token "$T"` breaks), so such
 * draws are discarded (about 1 in 32; the rest keep 256 bits). What is stored:
 * - a locator, the first 16 hex digits of SHA-256(token): not secret (64 bits of a hash of the
 *   token), it only lets the server find the one row to verify against;
 * - the verifier, `scrypt$N$r$p$salt$key` (salted, memory-hard), so a copied database does not
 *   give away weak operator-chosen tokens. Rows from before (plain SHA-256 hex) still verify and
 *   are re-hashed with scrypt on their first successful use.
 * Verified tokens are remembered in memory (as SHA-256) so the status page's refresh does not run
 * scrypt every 5 s.
 */
const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 };
const MIN_ADMIN_TOKEN_LENGTH = 20;
const MIN_ADMIN_TOKEN_DISTINCT = 8;

export function newToken(): string {
  for (;;) {
    const token = randomBytes(32).toString('base64url');
    if (/^[A-Za-z0-9]/.test(token)) return token;
  }
}

function sha256(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function tokenLocator(token: string): string {
  return sha256(token).toString('hex').slice(0, 16);
}

export function hashSecret(token: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(token, salt, SCRYPT.keylen, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `stored` is a legacy unsalted SHA-256 verifier that should be re-hashed. */
export function isLegacyHash(stored: string): boolean {
  return /^[0-9a-f]{64}$/.test(stored);
}

const verified = new Map<string, Buffer>();

type Scrypt = (token: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Buffer | Promise<Buffer>;

/**
 * Checks `token` against `stored` with `derive` doing the scrypt (synchronous for the operator API,
 * whose token is remembered after its first use; on the thread pool for site hellos).
 */
function verifyWith(token: string, stored: string, derive: Scrypt): boolean | Promise<boolean> {
  const digest = sha256(token);
  const known = verified.get(stored);
  if (known) return timingSafeEqual(known, digest);
  const settle = (ok: boolean) => {
    if (ok) verified.set(stored, digest);
    return ok;
  };
  if (isLegacyHash(stored)) return settle(timingSafeEqual(digest, Buffer.from(stored, 'hex')));
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = derive(token, Buffer.from(salt, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  const compare = (a: Buffer) => settle(a.length === expected.length && timingSafeEqual(a, expected));
  return actual instanceof Promise ? actual.then(compare) : compare(actual);
}

/** Constant-time check of a presented token against a stored verifier (scrypt, or legacy SHA-256). */
export function verifySecret(token: string, stored: string): boolean {
  return verifyWith(token, stored, scryptSync) as boolean;
}

/**
 * verifySecret with scrypt on libuv's thread pool: ~50-150 ms of work per site token that would
 * otherwise hold the event loop, so a thousand sites reconnecting at once do not stall the rest.
 */
export async function verifySecretAsync(token: string, stored: string): Promise<boolean> {
  return verifyWith(token, stored, (t, salt, keylen, options) => new Promise((resolve, reject) => {
    scrypt(t, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  }));
}

/** The operator's token guards the whole API: at least 20 characters, at least 8 of them different. */
export function checkAdminTokenStrength(token: string): void {
  if (token.length < MIN_ADMIN_TOKEN_LENGTH || new Set(token).size < MIN_ADMIN_TOKEN_DISTINCT) {
    throw new FedSegError(`admin token is too weak: it needs at least ${MIN_ADMIN_TOKEN_LENGTH} characters, ${MIN_ADMIN_TOKEN_DISTINCT} of them different (leave it out to have one generated)`, { field: 'adminToken' });
  }
}
