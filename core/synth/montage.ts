/**
 * A picture of how the synthetic hospitals differ: one row per site (its first case), with the
 * axial slice through most tumour in FLAIR, T1, T1ce and T2, the mask on FLAIR, and a coronal T2
 * slice that shows the site's slice thickness. Each panel is windowed on its own (as min-max scaling
 * does), so what remains visible is what a model must cope with: contrast, bias, noise, blur.
 */
import { axialSlice, coronalSlice, largestTumourSlice, renderPanels, stackRows, type RgbImage } from '../report/overlay.js';
import { generateCase } from './phantom.js';
import { MODALITIES, siteProfile } from './site-profiles.js';

export function siteMontage(seed: number, sites: number, scale = 1): RgbImage {
  const rows: RgbImage[] = [];
  for (let site = 1; site <= sites; site++) {
    const c = generateCase(seed, siteProfile(seed, site), 0);
    const k = largestTumourSlice(c.seg, c.dims);
    const j = Math.round(c.tumour.centre[1]);
    const [width, height, depth] = c.dims;
    rows.push(renderPanels([
      ...MODALITIES.map((m) => ({ intensity: axialSlice(c.modalities[m], c.dims, k), width, height })),
      { intensity: axialSlice(c.modalities.flair, c.dims, k), labels: axialSlice(c.seg, c.dims, k), width, height },
      { intensity: coronalSlice(c.modalities.t2, c.dims, j), width, height: depth },
    ], scale));
  }
  return stackRows(rows);
}
