/** Per-kernel totals of a tf.profile run, largest first (bench step and bench infer print them). */
import type { tf } from '../core/tf/backend.js';

type ProfileInfo = Awaited<ReturnType<typeof tf.profile>>;

export interface KernelShare { kernel: string; calls: number; seconds: number; share: number }

export function kernelShares(profile: ProfileInfo): KernelShare[] {
  const byKernel = new Map<string, { calls: number; ms: number }>();
  for (const k of profile.kernels) {
    const entry = byKernel.get(k.name) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += Number(k.kernelTimeMs) || 0;
    byKernel.set(k.name, entry);
  }
  const totalMs = [...byKernel.values()].reduce((sum, e) => sum + e.ms, 0);
  return [...byKernel]
    .map(([kernel, e]) => ({ kernel, calls: e.calls, seconds: round(e.ms / 1000), share: round(e.ms / totalMs, 3) }))
    .sort((a, b) => b.seconds - a.seconds);
}

export function round(v: number, digits = 2): number {
  return Number(v.toFixed(digits));
}
