/**
 * The report's picture: the axial slice with the most true tumour of one held-out case, as FLAIR,
 * FLAIR + ground truth and FLAIR + the final global model's prediction, in BraTS colours.
 */
import { discoverDataset } from '../core/brats/index.js';
import { FedSegError } from '../core/errors.js';
import { readNifti, toFloat32 } from '../core/nifti/index.js';
import { axialSlice, encodePng, largestTumourSlice, renderPanels } from '../core/report/index.js';
import type { HeldOutCase } from './downsampled-trainer.js';

export async function renderPredictionSlice(heldOutDir: string, item: HeldOutCase, prediction: Uint8Array): Promise<{ png: Buffer; caption: string }> {
  const files = (await discoverDataset(heldOutDir)).cases.find((c) => c.caseId === item.caseId);
  const flairFile = files?.modalities.flair;
  if (!flairFile) throw new FedSegError('held-out case has no FLAIR image', { caseId: item.caseId, file: heldOutDir });
  const flair = await readNifti(flairFile);
  const dims = item.truth.dims;
  const k = largestTumourSlice(item.truth.data, dims);
  const intensity = axialSlice(toFloat32(flair), dims, k);
  const [width, height] = dims;
  const image = renderPanels([
    { intensity, width, height },
    { intensity, labels: axialSlice(item.truth.data, dims, k), width, height },
    { intensity, labels: axialSlice(prediction, dims, k), width, height },
  ], 2);
  return {
    png: encodePng(image.rgb, image.width, image.height),
    caption: `Held-out case ${item.caseId}, axial slice k = ${k} (the slice with most true tumour): FLAIR, FLAIR + ground truth, FLAIR + the final global model's prediction.`,
  };
}
