/** report.json: what a demo run measured, validated with zod wherever it is read back. */
import { z } from 'zod';

/** Dice per region; null where no site reported a value (e.g. an evaluation that never arrived). */
export const RegionDiceSchema = z.object({ ET: z.number().nullable(), TC: z.number().nullable(), WT: z.number().nullable() });
export type RegionDice = z.infer<typeof RegionDiceSchema>;

/** Mean Dice over one site's held-out cases. */
export const SiteDiceSchema = RegionDiceSchema.extend({ cases: z.number().int().nonnegative() });
export type SiteDice = z.infer<typeof SiteDiceSchema>;

export const RoundSchema = z.object({
  round: z.number().int().positive(),
  /** Sites whose update was aggregated into this round's global model. */
  sitesReturned: z.array(z.string()),
  /** Global model's Dice: mean over sites of each site's held-out mean. */
  dice: RegionDiceSchema,
  perSite: z.record(z.string(), SiteDiceSchema),
  /** Global model's HD95 in mm per region, mean over sites (each the mean over its held-out cases). */
  hd95: RegionDiceSchema.optional(),
  seconds: z.number().nonnegative(),
  /** Peak resident memory during the round (training and evaluation), MiB; Linux only. */
  peakRssMiB: z.object({ server: z.number().nonnegative(), largestSite: z.number().nonnegative() }).optional(),
});
export type RoundEntry = z.infer<typeof RoundSchema>;

export const BaselineSchema = z.object({
  /** Each site trained alone, evaluated on its own held-out cases. */
  localOnly: z.record(z.string(), SiteDiceSchema),
  localOnlyMean: RegionDiceSchema,
  /** One model trained on every site's training cases pooled, evaluated on each site's held-out cases. */
  centralised: z.record(z.string(), SiteDiceSchema),
  centralisedMean: RegionDiceSchema,
  /** Optimiser steps each baseline model got: the same total budget as the federation. */
  budget: z.string(),
  seconds: z.number().nonnegative(),
});
export type BaselineResults = z.infer<typeof BaselineSchema>;

/**
 * The privacy settings a run trained under (report.json of the demo and of each experiment run):
 * whether updates were summed under secure aggregation, and the DP-FedAvg clip, noise multiplier
 * and sampling rate with the epsilon at delta the accountant gives after the rounds completed.
 */
export const PrivacyRecordSchema = z.object({
  secureAggregation: z.boolean(),
  clip: z.number().positive(),
  noiseMultiplier: z.number().positive(),
  delta: z.number().gt(0).lt(1),
  epsilon: z.number().nonnegative(),
  rounds: z.int().nonnegative(),
  samplingRate: z.number().gt(0).max(1),
});
export type PrivacyRecord = z.infer<typeof PrivacyRecordSchema>;

/**
 * One line of a federated-against-baselines comparison (`fedseg demo --baselines`, `fedseg experiment`):
 * dice is the mean over every site's held-out cases.
 */
export const ComparisonRowSchema = z.object({
  method: z.enum(['federated', 'local-only', 'centralised']),
  /** The federated strategy; 'none' for the baselines. */
  strategy: z.string(),
  model: z.enum(['unet', 'attention-unet']),
  seed: z.number().int(),
  dice: z.object({ ET: z.number(), TC: z.number(), WT: z.number() }),
});
export type ComparisonRow = z.infer<typeof ComparisonRowSchema>;

export const DemoReportSchema = z.object({
  createdAt: z.string(),
  outDir: z.string(),
  backend: z.string(),
  settings: z.object({
    sites: z.array(z.string()),
    rounds: z.number().int().positive(),
    model: z.enum(['unet', 'attention-unet']),
    casesPerSite: z.number().int().positive(),
    trainCasesPerSite: z.record(z.string(), z.number().int().nonnegative()),
    heldOutCasesPerSite: z.record(z.string(), z.number().int().nonnegative()),
    /** Human description of the reduced model/input size the demo uses, and why. */
    reducedSize: z.string(),
    localEpochs: z.number().int().positive(),
    seed: z.number().int(),
  }),
  rounds: z.array(RoundSchema),
  baselines: BaselineSchema.optional(),
  /** With --baselines: the last round's global model, local-only and centralised, one row each. */
  comparison: z.array(ComparisonRowSchema).optional(),
  totalSeconds: z.number().nonnegative(),
  /** Where it ran: timings only compare on the same machine under similar load. */
  machine: z.object({ cpus: z.int().positive(), cpuModel: z.string(), loadAverageStart: z.number(), loadAverageEnd: z.number() }).optional(),
  /** Caption of the slice picture embedded in report.html. */
  sliceCaption: z.string().optional(),
  /** With --dp-epsilon: the DP settings and the epsilon spent by the rounds completed. */
  privacy: PrivacyRecordSchema.optional(),
});
export type DemoReport = z.infer<typeof DemoReportSchema>;
