import { basename } from 'node:path';
import { expectedPath, type BratsCaseFiles } from '../brats/index.js';
import { FedSegError } from '../errors.js';
import type { PreprocessConfig } from './config.js';
import { loadVolume } from './load.js';
import type { CaseVolumes } from './pipeline.js';

export interface CaseSourceOptions {
  /** Use a reviewer's `_final_seg` mask instead of `_seg` when the case has one (default true). */
  preferFinalMask?: boolean;
  /** Leave the mask out even if the case has one (inference). */
  ignoreMask?: boolean;
}

/**
 * Reads a discovered case from disk lazily, one volume per call. Checks up front that every
 * configured channel exists, so a missing modality fails before anything is read or written.
 */
export function caseVolumesFromFiles(files: BratsCaseFiles, config: PreprocessConfig, options: CaseSourceOptions = {}): CaseVolumes {
  const { caseId } = files;
  for (const problem of files.problems) throw new FedSegError(problem.reason, { caseId, file: problem.file });
  for (const modality of config.channels) {
    if (!files.modalities[modality]) {
      throw new FedSegError(`missing ${modality} modality (looked for ${basename(expectedPath(files, modality))} or .nii)`, {
        caseId, file: expectedPath(files, modality),
      });
    }
  }
  const maskFile = options.ignoreMask ? null : (options.preferFinalMask ?? true) ? (files.finalMask ?? files.mask) : files.mask;
  const source: CaseVolumes = {
    caseId,
    loadModality: (modality) => loadVolume(files.modalities[modality] as string, caseId),
  };
  if (maskFile) source.loadMask = () => loadVolume(maskFile, caseId);
  return source;
}
