/** What the demo hands each site process (argv JSON, validated); the token comes via FEDSEG_SITE_TOKEN. */
import { z } from 'zod';

export const SiteWorkerConfigSchema = z.object({
  url: z.url({ protocol: /^wss?$/ }),
  site: z.string().min(1),
  trainDir: z.string().min(1),
  heldOutDir: z.string().min(1),
  /** When set, the site trains and evaluates only while holding this machine-wide lock file (demo/machine-lock.ts). */
  machineLock: z.string().min(1).optional(),
  /** Train and evaluate each round in a fresh worker thread (site/isolated-trainer.ts), so five site processes do not each keep a wasm heap of their peak. */
  threadPerRound: z.boolean().default(false),
  /** Seeds the site's share of the noise in distributed-DP rounds (site/runtime.ts), so a demo rerun reproduces it. */
  noiseSeed: z.int().optional(),
});
export type SiteWorkerConfig = z.input<typeof SiteWorkerConfigSchema>;
