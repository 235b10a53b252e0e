/** What the demo hands each site process (argv JSON, validated); the token comes via FEDSEG_SITE_TOKEN. */
import { z } from 'zod';

export const SiteWorkerConfigSchema = z.object({
  url: z.url({ protocol: /^wss?$/ }),
  site: z.string().min(1),
  trainDir: z.string().min(1),
  heldOutDir: z.string().min(1),
  /** When set, the site trains and evaluates only while holding this machine-wide lock file (demo/machine-lock.ts). */
  machineLock: z.string().min(1).optional(),
});
export type SiteWorkerConfig = z.input<typeof SiteWorkerConfigSchema>;
