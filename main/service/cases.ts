/**
 * The site's case library: BraTS case folders found under the imported folder, their validation result,
 * review marks, reviewed final masks (`<case>_final_seg.nii.gz` in the case folder, labels 0/1/2/4, the case's
 * own affine) and on-demand predictions (kept in the app's data folder, never in the hospital's folder).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { discoverDataset, validateCase, type CaseReport } from '../../core/brats/index.js';
import { decodeNifti, readNiftiHeader, writeNifti } from '../../core/nifti/index.js';
import type { CaseSummary, MaskSource, Modality, RegionScores, ReviewState } from '../../preload/api.js';
import { MODALITIES } from '../../preload/api.js';
import { UserFacingError } from './errors.js';
import type { SiteStore } from './site-store.js';

const BRATS_LABELS = new Set([0, 1, 2, 4]);

export interface TrainingCaseFiles { id: string; dir: string; maskFile: string; files: Record<Modality, string> }

interface CaseEntry {
  id: string;
  dir: string;
  files: Partial<Record<Modality, string>>;
  /** Ground-truth mask shipped with the data (`_seg`, or the single extra NIfTI of BraTS case 355). */
  truth: string | null;
  issues: CaseSummary['issues'];
  metrics: CaseSummary['metrics'];
}

export class CaseLibrary {
  private cases = new Map<string, CaseEntry>();

  constructor(private readonly store: SiteStore) {}

  /** Discovers and validates (core/brats) every case under `folder`, one file in memory at a time. */
  async load(folder: string): Promise<CaseSummary[]> {
    const dataset = await discoverDataset(folder);
    const next = new Map<string, CaseEntry>();
    for (const files of dataset.cases) {
      const report = await validateCase(files);
      next.set(report.caseId, {
        id: report.caseId,
        dir: report.dir,
        files: pickModalities(report),
        truth: report.files.mask ?? null,
        issues: issuesOf(report),
        metrics: this.cases.get(report.caseId)?.metrics ?? null,
      });
    }
    this.cases = next;
    return this.summaries();
  }

  summaries(): CaseSummary[] {
    return [...this.cases.values()].map((c) => this.summary(c));
  }

  get(caseId: string): CaseEntry {
    const entry = this.cases.get(caseId);
    if (!entry) throw new UserFacingError(`Case ${caseId} is not in the imported folder.`);
    return entry;
  }

  summaryOf(caseId: string): CaseSummary {
    return this.summary(this.get(caseId));
  }

  finalMaskPath(c: CaseEntry): string {
    return join(c.dir, `${c.id}_final_seg.nii.gz`);
  }

  predictionPath(caseId: string): string {
    return join(this.store.dir, 'predictions', `${caseId}_pred_seg.nii.gz`);
  }

  setMetrics(caseId: string, metrics: CaseSummary['metrics']): void {
    this.get(caseId).metrics = metrics;
  }

  /** Cases the trainer may use: no validation error and a final (preferred) or ground-truth mask. */
  trainingCases(): TrainingCaseFiles[] {
    const out: TrainingCaseFiles[] = [];
    for (const c of this.cases.values()) {
      if (c.issues.some((i) => i.severity === 'error')) continue;
      const final = this.finalMaskPath(c);
      const maskFile = existsSync(final) ? final : c.truth;
      if (maskFile) out.push({ id: c.id, dir: c.dir, maskFile, files: c.files as Record<Modality, string> });
    }
    return out;
  }

  async readVolume(caseId: string, kind: Modality | MaskSource): Promise<Uint8Array> {
    const c = this.get(caseId);
    const file = this.fileOf(c, kind);
    if (!file || !existsSync(file)) throw new UserFacingError(`Case ${caseId} has no ${describe(kind)}.`);
    return new Uint8Array(await readFile(file));
  }

  /**
   * Writes the reviewed mask sent by the viewer (a NIfTI in the case's voxel grid) as the case's final mask:
   * labels checked against 0/1/2/4, dims against the case, affine taken from the case itself.
   */
  async saveFinalMask(caseId: string, nifti: Uint8Array): Promise<CaseSummary> {
    const c = this.get(caseId);
    const reference = c.files.flair ?? Object.values(c.files)[0];
    if (!reference) throw new UserFacingError(`Case ${caseId} has no image, so its mask cannot be saved.`);
    const { header } = await readNiftiHeader(reference);
    const bytes = nifti[0] === 0x1f && nifti[1] === 0x8b ? gunzipSync(nifti) : nifti;
    const image = decodeNifti(bytes, `${caseId} (edited mask)`);
    const dims = image.header.dims.slice(0, 3);
    const expected = header.dims.slice(0, 3);
    if (dims.join('x') !== expected.join('x') || image.header.dims.slice(3).some((d) => d > 1)) {
      throw new UserFacingError(`The edited mask is ${image.header.dims.join(' x ')} voxels but case ${caseId} is ${expected.join(' x ')}.`);
    }
    const labels = new Uint8Array(image.data.length);
    for (let i = 0; i < labels.length; i++) {
      const value = Number(image.data[i]);
      if (!BRATS_LABELS.has(value)) throw new UserFacingError(`The edited mask of ${caseId} contains label ${value}; only 0, 1, 2 and 4 are allowed.`);
      labels[i] = value;
    }
    await writeNifti(this.finalMaskPath(c), { dims: expected, affine: header.affine, datatype: 'uint8', data: labels });
    return this.summary(c);
  }

  review(caseId: string): ReviewState {
    this.get(caseId);
    return { caseId, marks: { ...(this.store.review[caseId] ?? {}) } };
  }

  setSliceMark(caseId: string, key: string, mark: 'ok' | 'wrong' | null): ReviewState {
    this.get(caseId);
    const marks = { ...(this.store.review[caseId] ?? {}) };
    if (mark === null) delete marks[key];
    else marks[key] = mark;
    this.store.review[caseId] = marks;
    this.store.saveReview();
    return { caseId, marks };
  }

  async ensurePredictionFolder(): Promise<void> {
    await mkdir(join(this.store.dir, 'predictions'), { recursive: true });
  }

  private fileOf(c: CaseEntry, kind: Modality | MaskSource): string | null {
    if (kind === 'truth') return c.truth;
    if (kind === 'final') return this.finalMaskPath(c);
    if (kind === 'prediction') return this.predictionPath(c.id);
    return c.files[kind] ?? null;
  }

  private summary(c: CaseEntry): CaseSummary {
    const has = {} as CaseSummary['has'];
    for (const m of MODALITIES) has[m] = Boolean(c.files[m]);
    has.truth = c.truth !== null;
    has.final = existsSync(this.finalMaskPath(c));
    has.prediction = existsSync(this.predictionPath(c.id));
    const marks = this.store.review[c.id] ?? {};
    const status = has.final ? 'final' : Object.keys(marks).length > 0 ? 'in-review' : 'not-reviewed';
    const trainable = !c.issues.some((i) => i.severity === 'error') && (has.final || has.truth);
    return { id: c.id, dir: c.dir, has, status, issues: c.issues, trainable, metrics: c.metrics };
  }
}

function pickModalities(report: CaseReport): Partial<Record<Modality, string>> {
  const out: Partial<Record<Modality, string>> = {};
  for (const m of MODALITIES) if (report.files[m]) out[m] = report.files[m];
  return out;
}

/** Validation errors and notes in plain words; a missing ground truth is a hint, not an error, for the app. */
function issuesOf(report: CaseReport): CaseSummary['issues'] {
  const issues: CaseSummary['issues'] = report.errors.map((e) => ({ severity: 'error' as const, message: `${basename(e.file)}: ${e.reason}` }));
  for (const note of report.notes) issues.push({ severity: 'warning', message: note });
  if (!report.files.mask && !report.files.finalMask) {
    issues.push({ severity: 'warning', message: 'no ground-truth mask: review a prediction and save it as final to use this case for training' });
  }
  return issues;
}

export function regionScores(values: Record<string, number>): RegionScores {
  return { et: values.ET ?? values.et ?? NaN, tc: values.TC ?? values.tc ?? NaN, wt: values.WT ?? values.wt ?? NaN };
}

function describe(kind: Modality | MaskSource): string {
  if (kind === 'truth') return 'ground-truth mask';
  if (kind === 'final') return 'final (reviewed) mask';
  if (kind === 'prediction') return 'prediction yet; run "Predict" first';
  return `${kind.toUpperCase()} volume`;
}

