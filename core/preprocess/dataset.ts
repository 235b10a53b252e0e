import { discoverDataset, type BratsCaseFiles } from '../brats/index.js';
import { errorMessage } from '../errors.js';
import { caseVolumesFromFiles, type CaseSourceOptions } from './case-source.js';
import type { PreprocessConfig } from './config.js';
import { downsampleCase } from './downsample.js';
import { passesTumourFilter, preprocessCase, type PreprocessedCase } from './pipeline.js';

export interface DatasetOptions extends CaseSourceOptions {
  /** Drop cases whose tumour fraction is not above config.minTumourFraction (default true: training). */
  tumourFilter?: boolean;
  /** Skip cases without a mask instead of yielding them without classes (default true: training). */
  requireMask?: boolean;
  /** A case that fails to load is skipped and recorded (default) or rethrown ('throw'). */
  onError?: 'skip' | 'throw';
  /** Reduce each kept case by this integer factor (e.g. 4: 128^3 -> 32^3) with downsampleCase. */
  downsample?: number;
  /**
   * Keep the yielded (downsampled) cases in memory after the first complete pass, so later passes
   * (epochs, federated rounds) skip disk and gzip. Meant for reduced-size data: at 32^3 x 3 a
   * case is ~0.4 MB; at full 128^3 x 3 it is ~25 MB per case.
   */
  cacheInMemory?: boolean;
}

/** What one pass over the dataset did with each case. */
export interface DatasetPassStats {
  total: number;
  yielded: number;
  /** Cases dropped by the tumour filter, with their tumour fraction. */
  droppedByFilter: { caseId: string; tumourFraction: number }[];
  withoutMask: string[];
  failed: { caseId: string; error: string }[];
}

/**
 * Preprocessed cases, one at a time: each pass reads, preprocesses and yields a case, then lets
 * it go before reading the next, so memory stays at about one case (~25 MB per 128^3 x 3 crop
 * plus one full-size modality while loading) however large the site's dataset is.
 * `stats` describes the latest (or current) pass.
 */
export class PreprocessedDataset implements AsyncIterable<PreprocessedCase> {
  stats: DatasetPassStats = emptyStats(0);
  private cached: { items: PreprocessedCase[]; stats: DatasetPassStats } | null = null;

  constructor(
    readonly cases: readonly BratsCaseFiles[],
    readonly config: PreprocessConfig,
    readonly options: DatasetOptions = {},
  ) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<PreprocessedCase> {
    if (this.cached) {
      this.stats = this.cached.stats;
      yield* this.cached.items;
      return;
    }
    const stats = emptyStats(this.cases.length);
    this.stats = stats;
    const { tumourFilter = true, requireMask = true, onError = 'skip', downsample = 1, cacheInMemory = false } = this.options;
    const kept: PreprocessedCase[] = [];
    for (const files of this.cases) {
      let item: PreprocessedCase;
      try {
        item = await preprocessCase(caseVolumesFromFiles(files, this.config, this.options), this.config);
      } catch (err) {
        if (onError === 'throw') throw err;
        stats.failed.push({ caseId: files.caseId, error: errorMessage(err) });
        continue;
      }
      if (!item.classes) {
        stats.withoutMask.push(item.caseId);
        if (requireMask) continue;
      } else if (tumourFilter && !passesTumourFilter(item, this.config)) {
        stats.droppedByFilter.push({ caseId: item.caseId, tumourFraction: item.tumourFraction ?? 0 });
        continue;
      }
      const reduced = downsampleCase(item, downsample);
      if (cacheInMemory) kept.push(reduced);
      stats.yielded++;
      yield reduced;
    }
    if (cacheInMemory) this.cached = { items: kept, stats };
  }
}

/** Discovers the cases under `dir` (a dataset or site folder) and streams them preprocessed. */
export async function openPreprocessedDataset(dir: string, config: PreprocessConfig, options: DatasetOptions = {}): Promise<PreprocessedDataset> {
  const dataset = await discoverDataset(dir);
  return new PreprocessedDataset(dataset.cases, config, options);
}

function emptyStats(total: number): DatasetPassStats {
  return { total, yielded: 0, droppedByFilter: [], withoutMask: [], failed: [] };
}
