/**
 * The report's picture: the axial slice with the most true tumour of one held-out case, as FLAIR,
 * FLAIR + ground truth and FLAIR + the final global model's prediction, in BraTS colours.
 */
import type { BratsCaseFiles } from '../core/brats/index.js';
import { FedSegError } from '../core/errors.js';
import type { LabelVolume } from '../core/metrics/index.js';
import { readNifti, toFloat32 } from '../core/nifti/index.js';
import { axialSlice, encodePng, largestTumourSlice, renderPanels } from '../core/report/index.js';

export async function renderPredictionSlice(files: BratsCaseFiles, truth: LabelVolume, prediction: Uint8Array): Promise<{ png: Buffer; caption: string }> {
  const flairFile = files.modalities.flair;
  if (!flairFile) throw new FedSegError('held-out case has no FLAIR image', { caseId: files.caseId });
  const flair = await readNifti(flairFile);
  const dims = truth.dims;
  const k = largestTumourSlice(truth.data, dims);
  const intensity = axialSlice(toFloat32(flair), dims, k);
  const [width, height] = dims;
  const image = renderPanels([
    { intensity, width, height },
    { intensity, labels: axialSlice(truth.data, dims, k), width, height },
    { intensity, labels: axialSlice(prediction, dims, k), width, height },
  ], 2);
  return {
    png: encodePng(image.rgb, image.width, image.height),
    caption: `Held-out case ${files.caseId}, axial slice k = ${k} (the slice with most true tumour): FLAIR, FLAIR + ground truth, FLAIR + the final global model's prediction.`,
  };
}
