/**
 * Failed-login limiter for site hellos and the operator API, keyed by remote address: after
 * `maxFailures` failures within `windowMs` the address is locked out until that window ends, and
 * only the failures up to the limit (plus the one that locks it out) are worth an audit row, so a
 * flood of wrong tokens neither guesses fast nor fills the audit log.
 */
export class FailureLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(readonly maxFailures = 10, readonly windowMs = 60_000) {}

  /** True while `key` is locked out. */
  blocked(key: string): boolean {
    return (this.window(key)?.failures ?? 0) >= this.maxFailures;
  }

  /** Counts a failure of `key`; `audit` is true for failures up to and including the one that locks it out. */
  fail(key: string): { audit: boolean; blocked: boolean } {
    if (this.windows.size > 10_000) this.prune();
    const w = this.window(key) ?? { start: Date.now(), failures: 0 };
    w.failures++;
    this.windows.set(key, w);
    return { audit: w.failures <= this.maxFailures, blocked: w.failures >= this.maxFailures };
  }

  /** Seconds until `key`'s window ends (for Retry-After). */
  retryAfterS(key: string): number {
    const w = this.window(key);
    return w ? Math.max(1, Math.ceil((w.start + this.windowMs - Date.now()) / 1000)) : 0;
  }

  private window(key: string): { start: number; failures: number } | null {
    const w = this.windows.get(key);
    if (!w) return null;
    if (Date.now() - w.start >= this.windowMs) {
      this.windows.delete(key);
      return null;
    }
    return w;
  }

  private prune(): void {
    for (const key of [...this.windows.keys()]) this.window(key);
  }
}
