/** The `privacy` block of a federation config: client-level DP-FedAvg (docs/PRIVACY.md). */
import { z } from 'zod';

export const PrivacyConfigSchema = z.object({
  /** L2 norm C every site clips its update (w_local - w_global) to. */
  clip: z.number().positive().finite(),
  /** sigma: the noise added to the sum of clipped updates has standard deviation sigma * C per parameter. */
  noiseMultiplier: z.number().positive().finite(),
  /** The delta epsilon is reported at. */
  delta: z.number().gt(0).lt(1).default(1e-5),
  /** The server refuses a round whose completion would take epsilon (at budget.delta) past budget.epsilon. */
  budget: z.object({ epsilon: z.number().positive().finite(), delta: z.number().gt(0).lt(1) }).strict(),
  /**
   * central: the server adds all the noise to the sum (it sees the sum before noise, so it must be
   * trusted). distributed: each of n sites adds N(0, sigma^2 C^2 / n) before secure-aggregation
   * masking, so nobody sees a sum with less than the full noise (docs/PRIVACY.md).
   */
  mode: z.enum(['central', 'distributed']).default('central'),
  /**
   * Probability that a site is asked in a round. The server asks every online site every round, so
   * only 1 is accepted: a smaller rate would make the accountant report less than the true epsilon.
   */
  samplingRate: z.literal(1, { error: 'privacy.samplingRate: the server asks every online site every round, so only 1 is accepted (site sampling is not implemented; a smaller rate would understate epsilon)' }).default(1),
  /**
   * Seeds the noise so a run is reproducible bit for bit (experiments, the demo). Anyone who knows
   * the seed can subtract the noise, so leave it out for real data: the server then draws a fresh
   * secret key every round.
   */
  noiseSeed: z.int().optional(),
}).strict();

export type PrivacyConfig = z.infer<typeof PrivacyConfigSchema>;
