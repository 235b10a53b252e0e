/**
 * BraTS 2020 dataset handling.
 *   MODALITIES, BRATS_LABELS, REGIONS ({ ET: [4], TC: [1, 4], WT: [1, 2, 4] }), labelToClass / classToLabel
 *   await discoverDataset(dir)  // { root, cases: BratsCaseFiles[], clinical } ; FedSegError if missing / empty
 *   await discoverCase(caseDir) // files by role: modalities.flair|t1|t1ce|t2, mask (seg or case-355 quirk), finalMask
 *   await validateCase(files)   // CaseReport { ok, caseId, files, dims, notes, errors: [{ file, reason }] }
 *   await validateDataset(dir, onCase?) // every case, one at a time; DatasetReport { ok, cases, failed, notes }
 *   formatCaseError(caseId, error) // "case X: file: reason"
 */
export * from './clinical.js';
export * from './discover.js';
export * from './labels.js';
export * from './validate.js';
