import { discoverDataset, type BratsCaseFiles } from '../brats/index.js';
import { FedSegError } from '../errors.js';
import { SeededRandom } from '../model/random.js';
import { averagePool, modePool, PreprocessedDataset, type DatasetPassStats, type PreprocessConfig, type PreprocessedCase } from '../preprocess/index.js';
import type { CaseTensor, ClassVolume } from '../preprocess/layout.js';

/** A preprocessed case with its mask: what the trainer samples patches from. */
export interface TrainingCase {
  caseId: string;
  image: CaseTensor;
  classes: ClassVolume;
}

/**
 * Cases for one split, some kept in memory and the rest re-read from disk each pass (when the
 * cache budget is exhausted), so memory stays bounded whatever the dataset size.
 */
export class CaseStore {
  constructor(
    readonly cached: readonly TrainingCase[],
    private readonly streamed: readonly BratsCaseFiles[] = [],
    private readonly config?: PreprocessConfig,
    /** Block-averaging factor applied to every case (models with `downsample` > 1). */
    readonly downsample = 1,
  ) {}

  /** The same cases reduced by `factor` (image block mean, classes block mode), as a model with that `downsample` sees them. */
  downsampled(factor: number): CaseStore {
    if (factor === this.downsample) return this;
    if (this.downsample !== 1) throw new FedSegError(`cases already reduced x${this.downsample} cannot be reduced again to x${factor}`, { field: 'downsample' });
    const reduced = this.cached.map((c) => ({ caseId: c.caseId, image: averagePool(c.image, factor), classes: modePool(c.classes, factor) }));
    return new CaseStore(reduced, this.streamed, this.config, factor);
  }

  get size(): number {
    return this.cached.length + this.streamed.length;
  }

  get caseIds(): string[] {
    return [...this.cached.map((c) => c.caseId), ...this.streamed.map((f) => f.caseId)];
  }

  /** Every case once: cached ones in a seeded random order, then streamed ones in dataset order. */
  async *pass(rng: SeededRandom): AsyncGenerator<TrainingCase> {
    yield* rng.shuffle([...this.cached]);
    if (this.streamed.length === 0 || !this.config) return;
    const dataset = new PreprocessedDataset(this.streamed, this.config, { tumourFilter: false, onError: 'throw', downsample: this.downsample });
    for await (const item of dataset) yield asTrainingCase(item);
  }
}

/** Training and validation cases of a dataset, with what the tumour filter and loading dropped. */
export interface PreparedData {
  train: CaseStore;
  validation: CaseStore;
  stats: DatasetPassStats;
  /** Folders the cases came from. */
  roots: string[];
  /** caseId -> mask file of every discovered case that has one (for scoring on the original grid). */
  masks: Map<string, string>;
}

export interface PrepareOptions {
  /** Fraction of usable cases held out for validation (seeded split); default 0.2, none when < 2 cases. */
  validationFraction?: number;
  seed?: number;
  /** In-memory cache budget in bytes; cases beyond it are re-read each epoch. Default 4 GiB. */
  cacheBytes?: number;
  /** Drop cases below the preprocessing's tumour fraction (default true, SPEC section 3; off for held-out scoring). */
  tumourFilter?: boolean;
  /**
   * caseId -> mask file to use instead of the discovered one (`_final_seg`, else `_seg`): the desktop app's
   * choice among a case's reviewed versions and its ground truth. Cases not named keep the discovered mask.
   */
  maskFiles?: ReadonlyMap<string, string>;
}

function caseBytes(item: TrainingCase): number {
  return item.image.data.byteLength + item.classes.data.byteLength;
}

function asTrainingCase(item: PreprocessedCase): TrainingCase {
  if (!item.classes) throw new FedSegError('case has no mask', { caseId: item.caseId });
  return { caseId: item.caseId, image: item.image, classes: item.classes };
}

/**
 * Discovers the cases under each folder, preprocesses them once (tumour filter on, cases without a
 * mask skipped), caches what fits in the budget, and splits train/validation. A folder set with no
 * usable case is an error that says why each case was dropped.
 */
export async function prepareTrainingData(dirs: readonly string[], config: PreprocessConfig, options: PrepareOptions = {}): Promise<PreparedData> {
  const files: BratsCaseFiles[] = [];
  for (const dir of dirs) files.push(...(await discoverDataset(dir)).cases.map((f) => withMask(f, options.maskFiles?.get(f.caseId))));
  const dataset = new PreprocessedDataset(files, config, { tumourFilter: options.tumourFilter ?? true, requireMask: true, onError: 'skip' });
  const budget = options.cacheBytes ?? 4 * 1024 ** 3;
  let used = 0;
  const cached: TrainingCase[] = [];
  const streamed: BratsCaseFiles[] = [];
  for await (const item of dataset) {
    const training = asTrainingCase(item);
    if (used + caseBytes(training) <= budget) {
      cached.push(training);
      used += caseBytes(training);
    } else {
      streamed.push(files.find((f) => f.caseId === item.caseId) as BratsCaseFiles);
    }
  }
  const stats = dataset.stats;
  if (cached.length + streamed.length === 0) {
    throw new FedSegError(`no usable training case among ${stats.total}: ${describeDrops(stats)}`, { file: dirs.join(', ') });
  }

  const rng = new SeededRandom(options.seed ?? 0);
  const usable = cached.length + streamed.length;
  const fraction = options.validationFraction ?? 0.2;
  const validationCount = usable < 2 ? 0 : Math.min(usable - 1, Math.round(usable * fraction));
  const held = new Set(rng.shuffle([...cached.map((c) => c.caseId), ...streamed.map((f) => f.caseId)]).slice(0, validationCount));
  return {
    train: new CaseStore(cached.filter((c) => !held.has(c.caseId)), streamed.filter((f) => !held.has(f.caseId)), config),
    validation: new CaseStore(cached.filter((c) => held.has(c.caseId)), streamed.filter((f) => held.has(f.caseId)), config),
    stats,
    roots: [...dirs],
    masks: new Map(files.flatMap((f) => (f.mask ? [[f.caseId, f.mask] as const] : []))),
  };
}

/** The case with `mask` as its only mask (a chosen mask replaces both `_seg` and `_final_seg`). */
function withMask(files: BratsCaseFiles, mask: string | undefined): BratsCaseFiles {
  return mask === undefined ? files : { ...files, mask, maskSource: 'seg', finalMask: null };
}

/** Why cases were left out, e.g. "3 below the 1 % tumour filter (A 0.4 %, ...), 1 without a mask, 1 failed (B: ...)". */
export function describeDrops(stats: DatasetPassStats): string {
  const parts: string[] = [];
  if (stats.droppedByFilter.length > 0) {
    const list = stats.droppedByFilter.slice(0, 3).map((d) => `${d.caseId} ${(100 * d.tumourFraction).toFixed(2)} %`).join(', ');
    parts.push(`${stats.droppedByFilter.length} dropped by the tumour-fraction filter (${list}${stats.droppedByFilter.length > 3 ? ', ...' : ''})`);
  }
  if (stats.withoutMask.length > 0) parts.push(`${stats.withoutMask.length} without a mask`);
  if (stats.failed.length > 0) {
    parts.push(`${stats.failed.length} failed to load (${stats.failed.slice(0, 2).map((f) => f.error).join('; ')})`);
  }
  return parts.length > 0 ? parts.join(', ') : 'no cases';
}
