/** What the demo hands each site process (argv JSON, validated); the token comes via FEDSEG_SITE_TOKEN. */
import { z } from 'zod';
import { BACKEND_PREFERENCES } from '../core/tf/backend.js';

export const SiteWorkerConfigSchema = z.object({
  url: z.url({ protocol: /^wss?$/ }),
  site: z.string().min(1),
  trainDir: z.string().min(1),
  heldOutDir: z.string().min(1),
  /** When set, the site trains and evaluates only while holding this machine-wide lock file (demo/machine-lock.ts). */
  machineLock: z.string().min(1).optional(),
  /** Most samples per forward/backward pass (exact micro-batches), to bound a full-size step's memory. */
  microBatch: z.int().positive().optional(),
  backend: z.enum(BACKEND_PREFERENCES).default('auto'),
});
export type SiteWorkerConfig = z.input<typeof SiteWorkerConfigSchema>;
