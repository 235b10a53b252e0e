/** A zod-checked JSON file written atomically (core/fs/atomic-write), so a crash never leaves half a settings file. */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { z } from 'zod';
import { FedSegError } from '../../core/errors.js';
import { writeFileAtomicSync } from '../../core/fs/atomic-write.js';

export function readJson<S extends z.ZodType>(path: string, schema: S, fallback: z.infer<S>): z.infer<S> {
  if (!existsSync(path)) return fallback;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new FedSegError('is not valid JSON; move it away to start with fresh settings', { file: path });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FedSegError(issue?.message ?? 'invalid settings', { file: path, field: issue?.path.join('.') });
  }
  return parsed.data;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, what: 'settings file' });
}
