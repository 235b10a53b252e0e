/**
 * Held-out evaluation as SPEC section 4 defines it: each case is predicted over its whole crop
 * (sliding window, at the model's own `downsample`), put back into the original grid with labels
 * 0/1/2/4, and scored against the case's mask file on that full grid. Only means over the cases
 * come out, never a per-case value.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { computeCaseMetrics, readLabelVolume, regionMetricKey, REGIONS } from '../metrics/index.js';
import type { SegmentationModel } from '../model/network.js';
import { uncropClassesToLabels, type CropWindow } from '../preprocess/index.js';
import type { CaseTensor } from '../preprocess/layout.js';
import { predictVolume } from './sliding-window.js';

export interface EvaluationCase {
  caseId: string;
  /** Preprocessed crop at full resolution. */
  image: CaseTensor;
  /** The case's BraTS mask file (labels 0/1/2/4 on the original grid). */
  maskFile: string;
}

/** Mean Dice and HD95 (mm) per region over `cases`, keyed by regionMetricKey. */
export async function evaluateHeldOut(
  model: SegmentationModel, cases: AsyncIterable<EvaluationCase> | Iterable<EvaluationCase>, crop: CropWindow, signal?: AbortSignal,
): Promise<{ numCases: number; metrics: Record<string, number> }> {
  const sums: Record<string, number> = {};
  let numCases = 0;
  for await (const item of cases) {
    signal?.throwIfAborted();
    const classes = await predictVolume(model, item.image, { signal });
    const truth = await readLabelVolume(item.maskFile);
    const labels = uncropClassesToLabels(classes, crop, truth.dims);
    const metrics = computeCaseMetrics({ data: labels, dims: truth.dims, spacing: truth.spacing, source: `prediction for ${item.caseId}` }, truth);
    for (const region of REGIONS) {
      for (const metric of ['dice', 'hd95'] as const) {
        const key = regionMetricKey(metric, region);
        sums[key] = (sums[key] ?? 0) + metrics[region][metric];
      }
    }
    numCases++;
    await yieldToEventLoop(); // keep answering heartbeats between cases
  }
  return { numCases, metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(numCases, 1)])) };
}
