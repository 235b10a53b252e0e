/**
 * How the round loop waits: until a condition holds, a deadline passes, or the server stops. Every
 * message that could change a condition calls poke(), which re-checks it at once.
 */
export class ConditionWait {
  private wake: (() => void) | null = null;
  private stopping = false;

  /**
   * `blocked` runs before each stretch of waiting (the federation then says what it waits for);
   * `fresh` is true for the first stretch of a new wait, i.e. when the round loop entered a new step.
   */
  constructor(private readonly blocked: (fresh: boolean) => void) {}

  get stopped(): boolean {
    return this.stopping;
  }

  /** Re-checks the condition being waited on. */
  poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Ends every wait now and any later one at once. */
  stop(): void {
    this.stopping = true;
    this.poke();
  }

  /** Resolves when `done()` holds (checked on every poke), `deadline` (epoch ms) passes, or stop() is called. */
  async until(deadline: number, done: () => boolean): Promise<void> {
    let fresh = true;
    while (!this.stopping && !done() && Date.now() < deadline) {
      this.blocked(fresh);
      fresh = false;
      await new Promise<void>((resolve) => {
        // setTimeout caps at ~24.8 days; longer waits simply re-check.
        const timer = setTimeout(resolve, Math.min(2 ** 31 - 1, Math.max(0, deadline - Date.now())));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  sleep(ms: number): Promise<void> {
    return this.until(Date.now() + ms, () => false);
  }
}
