/** On-demand prediction for the viewer with the latest global model. */
import type { PredictionResult } from '../../preload/api.js';
import type { CaseLibrary } from './cases.js';
import { UserFacingError } from './errors.js';
import type { SiteStore } from './site-store.js';

export async function predictCase(cases: CaseLibrary, store: SiteStore, caseId: string): Promise<PredictionResult> {
  void cases; void store; void caseId;
  throw new UserFacingError('TEMPORARY: inference not wired yet');
}
