/** Local trainer for the site runtime, over the app's approved cases (final mask preferred over ground truth). */
import type { LocalTrainer } from '../../site/runtime.js';
import type { TrainingCase } from './cases.js';
import { UserFacingError } from './errors.js';

export function makeTrainer(cases: TrainingCase[]): LocalTrainer {
  void cases;
  throw new UserFacingError('TEMPORARY: trainer not wired yet');
}
