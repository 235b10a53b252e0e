/**
 * On-demand prediction for the viewer with the latest global model this site received: core/inference's
 * sliding-window segmentation in the original grid, stored in the app's data folder (never the hospital's),
 * and scored against the ground truth when the case has one.
 */
import { existsSync } from 'node:fs';
import { segmentCase, preprocessFromMeta, writeSegmentation } from '../../core/inference/index.js';
import { computeCaseMetrics, readLabelVolume } from '../../core/metrics/index.js';
import { createModel } from '../../core/model/network.js';
import { describeBackend, initBackend } from '../../core/tf/backend.js';
import { loadModelFile } from '../../core/weights/index.js';
import type { PredictionResult } from '../../preload/api.js';
import type { CaseLibrary } from './cases.js';
import { UserFacingError } from './errors.js';
import type { SiteStore } from './site-store.js';

/** The federation round the model file says it came from (written by FederationLink). */
function modelRound(meta: Record<string, unknown>): number | null {
  return typeof meta.round === 'number' ? meta.round : null;
}

export async function predictCase(cases: CaseLibrary, store: SiteStore, caseId: string): Promise<PredictionResult> {
  const entry = cases.get(caseId);
  const modelPath = store.settings.modelPath;
  if (!modelPath || !existsSync(modelPath)) {
    throw new UserFacingError('There is no model to predict with yet. This site receives the global model after the first completed federation round.');
  }
  await initBackend();
  const file = await loadModelFile(modelPath);
  const model = createModel(file.config, 0);
  let segmentation;
  try {
    model.setWeights(file.tensors);
    segmentation = await segmentCase(model, entry.dir, preprocessFromMeta(file.meta, modelPath));
  } finally {
    model.dispose();
  }
  await cases.ensurePredictionFolder();
  const out = cases.predictionPath(caseId);
  await writeSegmentation(out, segmentation);
  cases.setPredictionModel(caseId, { round: modelRound(file.meta), modelSha256: typeof file.meta.globalSha256 === 'string' ? file.meta.globalSha256 : file.sha256 });
  if (entry.truth) {
    const metrics = computeCaseMetrics(await readLabelVolume(out), await readLabelVolume(entry.truth));
    cases.setMetrics(caseId, {
      dice: { et: metrics.ET.dice, tc: metrics.TC.dice, wt: metrics.WT.dice },
      hd95: { et: metrics.ET.hd95, tc: metrics.TC.hd95, wt: metrics.WT.hd95 },
    });
  }
  const v = segmentation.volumesMl;
  return { caseSummary: cases.summaryOf(caseId), volumesMl: { et: v.ET, tc: v.TC, wt: v.WT }, seconds: segmentation.seconds, backend: describeBackend() };
}
