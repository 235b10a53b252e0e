/**
 * The site token at rest. Electron encrypts it with the OS keychain (safeStorage); the dev bridge, which has
 * no keychain, stores it readable by the owner only and reports `encrypted: false` so the UI can say so.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../../core/fs/atomic-write.js';

export interface SecretCodec {
  readonly encrypted: boolean;
  encode(plain: string): Buffer;
  decode(stored: Buffer): string;
}

export const plainCodec: SecretCodec = {
  encrypted: false,
  encode: (plain) => Buffer.from(plain, 'utf8'),
  decode: (stored) => stored.toString('utf8'),
};

export class TokenStore {
  constructor(private readonly file: string, private readonly codec: SecretCodec) {}

  get encrypted(): boolean {
    return this.codec.encrypted;
  }

  has(): boolean {
    return existsSync(this.file);
  }

  load(): string | null {
    return this.has() ? this.codec.decode(readFileSync(this.file)) : null;
  }

  save(token: string): void {
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.file, this.codec.encode(token), { mode: 0o600, fsync: true, what: 'site token' });
  }

  clear(): void {
    rmSync(this.file, { force: true });
  }
}
