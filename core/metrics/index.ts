/** BraTS segmentation metrics (SPEC section 4). */
export { computeCaseMetrics, type CaseMetrics, type RegionMetrics } from './case-metrics.js';
export { squaredDistanceTransform } from './edt.js';
export { HD95_ONE_EMPTY, hausdorff95 } from './hausdorff.js';
export { percentile } from './percentile.js';
export { REGION_BIT, REGIONS, regionBits, regionMetricKey, type Region } from './regions.js';
export { surfaceOf } from './surface.js';
export type { Dims3, LabelVolume, Spacing3 } from './types.js';
export { readLabelVolume } from './load.js';
