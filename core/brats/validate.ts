/**
 * Case-by-case validation of a BraTS dataset. Every file is fully read (so truncated or corrupt
 * files are caught), one file in memory at a time; every case is reported even when others fail.
 */
import { basename } from 'node:path';
import { errorMessage, FedSegError } from '../errors.js';
import { type NiftiImage, readNifti } from '../nifti/index.js';
import { type BratsCaseFiles, type CaseProblem, type CaseSplit, discoverDataset, expectedPath } from './discover.js';
import { BRATS_LABELS, isBratsLabel, MODALITIES } from './labels.js';

/** Voxel grid of every BraTS 2020 volume (1 mm isotropic). */
export const BRATS_GRID = [240, 240, 155] as const;

export interface CaseReport {
  ok: boolean;
  caseId: string;
  dir: string;
  split: CaseSplit;
  files: { flair?: string; t1?: string; t1ce?: string; t2?: string; mask?: string; finalMask?: string };
  /** Spatial dims shared by the case's files (those of the first readable modality), null if none was readable. */
  dims: number[] | null;
  /** Voxel count per label of the ground-truth mask, when it was read and valid. */
  maskLabelCounts: Record<string, number> | null;
  notes: string[];
  errors: CaseProblem[];
}

export interface DatasetReport {
  root: string;
  ok: boolean;
  cases: CaseReport[];
  failed: number;
  /** Side-file notes (name_mapping.csv, survival_info.csv). */
  notes: string[];
}

/** One line naming case, file and reason, for logs and the CLI. */
export function formatCaseError(caseId: string, problem: CaseProblem): string {
  return `case ${caseId}: ${basename(problem.file)}: ${problem.reason}`;
}

/** Validates every case under `root`, calling `onCase` as each finishes (for streaming output). */
export async function validateDataset(root: string, onCase?: (report: CaseReport) => void): Promise<DatasetReport> {
  const dataset = await discoverDataset(root);
  const cases: CaseReport[] = [];
  for (const files of dataset.cases) {
    const report = await validateCase(files);
    cases.push(report);
    onCase?.(report);
  }
  const failed = cases.filter((c) => !c.ok).length;
  return { root, ok: failed === 0, cases, failed, notes: dataset.clinical.notes };
}

export async function validateCase(files: BratsCaseFiles): Promise<CaseReport> {
  const errors: CaseProblem[] = [...files.problems];
  const notes = [...files.notes];
  // The first readable volume: every other file must share its grid.
  const grid: { reference: { file: string; dims: number[]; affine: number[][] } | null } = { reference: null };

  const checkShape = (image: NiftiImage): boolean => {
    const dims = image.header.dims;
    if (dims.length < 3 || dims.slice(3).some((n) => n !== 1)) {
      errors.push({ file: image.file, reason: `expected a 3D volume, got dims ${dims.join('x')}` });
      return false;
    }
    const spatial = dims.slice(0, 3);
    const reference = grid.reference;
    if (!reference) {
      grid.reference = { file: image.file, dims: spatial, affine: image.header.affine };
      return true;
    }
    if (spatial.some((n, axis) => n !== reference.dims[axis])) {
      errors.push({ file: image.file, reason: `dims ${spatial.join('x')} differ from ${basename(reference.file)} (${reference.dims.join('x')})` });
      return false;
    }
    if (!affinesClose(image.header.affine, reference.affine)) {
      notes.push(`${basename(image.file)}: affine differs from ${basename(reference.file)}'s (same grid size, different position or orientation)`);
    }
    return true;
  };

  for (const modality of MODALITIES) {
    const path = files.modalities[modality];
    if (!path) {
      errors.push({ file: expectedPath(files, modality), reason: `missing ${modality}: no *_${modality}.nii or *_${modality}.nii.gz file` });
      continue;
    }
    const image = await readOrReport(path, errors);
    if (image) checkShape(image);
  }

  let maskLabelCounts: Record<string, number> | null = null;
  if (files.mask) {
    const image = await readOrReport(files.mask, errors);
    if (image && checkShape(image)) maskLabelCounts = checkLabels(image, errors);
  } else if (files.split === 'training') {
    errors.push({ file: expectedPath(files, 'seg'), reason: 'missing mask: a training case needs a *_seg.nii or *_seg.nii.gz file' });
  } else {
    notes.push(files.split === 'validation' ? 'no mask (validation case)' : 'no mask: usable for prediction only');
  }
  if (files.finalMask) {
    const image = await readOrReport(files.finalMask, errors);
    if (image && checkShape(image)) checkLabels(image, errors);
  }

  const dims = grid.reference?.dims ?? null;
  if (dims && dims.some((n, axis) => n !== BRATS_GRID[axis])) {
    notes.push(`dims ${dims.join('x')} are not the BraTS grid ${BRATS_GRID.join('x')}; check that the preprocessing crop fits`);
  }
  const found = Object.fromEntries([
    ...MODALITIES.filter((m) => files.modalities[m]).map((m) => [m, files.modalities[m]]),
    ...(files.mask ? [['mask', files.mask]] : []),
    ...(files.finalMask ? [['finalMask', files.finalMask]] : []),
  ]) as CaseReport['files'];
  return {
    ok: errors.length === 0, caseId: files.caseId, dir: files.dir, split: files.split, files: found,
    dims, maskLabelCounts, notes, errors,
  };
}

async function readOrReport(path: string, errors: CaseProblem[]): Promise<NiftiImage | null> {
  try {
    return await readNifti(path);
  } catch (err) {
    errors.push({ file: path, reason: reasonOf(err, path) });
    return null;
  }
}

/** The reason part of a reader error (its message without the file prefix it already carries). */
function reasonOf(err: unknown, file: string): string {
  const message = errorMessage(err);
  return err instanceof FedSegError && message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message;
}

/** Counts labels; any value other than 0/1/2/4 is an error naming the values and how many voxels hold them. */
function checkLabels(image: NiftiImage, errors: CaseProblem[]): Record<string, number> | null {
  const { data, header } = image;
  const slope = header.scaling?.slope ?? 1;
  const inter = header.scaling?.inter ?? 0;
  const counts = new Map<number, number>();
  if (data instanceof Uint8Array && header.scaling === null) {
    const histogram = new Float64Array(256);
    for (let i = 0; i < data.length; i++) histogram[data[i]]++;
    histogram.forEach((n, value) => { if (n > 0) counts.set(value, n); });
  } else {
    // Valid labels are counted in a small array; only unexpected values go through the Map.
    const valid = [0, 0, 0, 0, 0];
    const isBig = data instanceof BigInt64Array || data instanceof BigUint64Array;
    for (let i = 0; i < data.length; i++) {
      const value = (isBig ? Number(data[i]) : (data[i] as number)) * slope + inter;
      if (isBratsLabel(value)) valid[value]++;
      else counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    for (const label of BRATS_LABELS) if (valid[label] > 0) counts.set(label, valid[label]);
  }
  const bad = [...counts.entries()].filter(([value]) => !isBratsLabel(value)).sort((a, b) => a[0] - b[0]);
  if (bad.length > 0) {
    const listed = bad.slice(0, 8).map(([value, n]) => `${value} (${n} voxel${n === 1 ? '' : 's'})`).join(', ');
    const more = bad.length > 8 ? ` and ${bad.length - 8} more` : '';
    errors.push({ file: image.file, reason: `mask values must be 0, 1, 2 or 4; found ${listed}${more}` });
    return null;
  }
  return Object.fromEntries(BRATS_LABELS.map((label) => [String(label), counts.get(label) ?? 0]));
}

function affinesClose(a: number[][], b: number[][]): boolean {
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) if (Math.abs(a[r][c] - b[r][c]) > 1e-3) return false;
  return true;
}
