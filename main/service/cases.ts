/**
 * The site's case library: BraTS case folders found under the imported folder, their validation result,
 * review marks, reviewed final masks (versions in the app's data folder with their provenance, see
 * final-masks.ts; labels 0/1/2/4, the case's own affine) and on-demand predictions (also in the app's data
 * folder, never in the hospital's folder, whose files the app only reads).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { userInfo } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { discoverDataset, validateCase, type CaseReport } from '../../core/brats/index.js';
import { readLabelVolume } from '../../core/metrics/index.js';
import { decodeNifti, readNifti, readNiftiHeader, writeNifti } from '../../core/nifti/index.js';
import type {
  CaseSummary, MaskProvenance, MaskSource, Modality, RegionScores, RequestOf, ReviewState, SaveFinalResult,
} from '../../preload/api.js';
import { MODALITIES } from '../../preload/api.js';
import { UserFacingError } from './errors.js';
import { FinalMaskStore } from './final-masks.js';
import { readJson, writeJsonAtomic } from './json-store.js';
import { compareMasks, plausibilityWarnings } from './mask-checks.js';
import type { SiteStore } from './site-store.js';

const BRATS_LABELS = new Set([0, 1, 2, 4]);
const PredictionInfoSchema = z.object({ round: z.number().int().nullable(), modelSha256: z.string().nullable() });

/** A case the trainer may use, with the mask file chosen for it and how the audit names that mask. */
export interface TrainingCaseFiles { id: string; dir: string; maskFile: string; maskLabel: string; files: Record<Modality, string> }

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
  private readonly finals: FinalMaskStore;

  constructor(private readonly store: SiteStore) {
    this.finals = new FinalMaskStore(store.path('final-masks'));
  }

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

  predictionPath(caseId: string): string {
    return join(this.store.dir, 'predictions', `${caseId}_pred_seg.nii.gz`);
  }

  /** Which global model a prediction came from, kept beside it. */
  private predictionInfoPath(caseId: string): string {
    return join(this.store.dir, 'predictions', `${caseId}_pred_seg.json`);
  }

  setPredictionModel(caseId: string, model: { round: number | null; modelSha256: string | null }): void {
    writeJsonAtomic(this.predictionInfoPath(caseId), model);
  }

  private predictionModel(caseId: string): CaseSummary['prediction'] {
    if (!existsSync(this.predictionPath(caseId))) return null;
    return readJson(this.predictionInfoPath(caseId), PredictionInfoSchema, { round: null, modelSha256: null });
  }

  setMetrics(caseId: string, metrics: CaseSummary['metrics']): void {
    this.get(caseId).metrics = metrics;
  }

  /**
   * Cases the trainer may use: no validation error and a mask, the final version in use or else the ground
   * truth. The trainer is given these mask files explicitly, so a `_final_seg` file in the hospital's folder
   * never overrides what the reviewer chose here.
   */
  trainingCases(): TrainingCaseFiles[] {
    const out: TrainingCaseFiles[] = [];
    for (const c of this.cases.values()) {
      if (c.issues.some((i) => i.severity === 'error')) continue;
      const { chosen } = this.finals.versions(c.id);
      const maskFile = chosen !== null ? this.finals.file(c.id, chosen) : c.truth;
      const maskLabel = chosen !== null ? `final v${chosen}` : 'ground truth';
      if (maskFile) out.push({ id: c.id, dir: c.dir, maskFile, maskLabel, files: c.files as Record<Modality, string> });
    }
    return out;
  }

  async readVolume(caseId: string, kind: Modality | MaskSource, version?: number): Promise<Uint8Array> {
    const c = this.get(caseId);
    const file = kind === 'final' && version !== undefined ? this.finalVersionFile(c.id, version) : this.fileOf(c, kind);
    if (!file || !existsSync(file)) throw new UserFacingError(`Case ${caseId} has no ${describe(kind)}.`);
    return new Uint8Array(await readFile(file));
  }

  /**
   * Saves the reviewed mask sent by the viewer (a NIfTI in the case's voxel grid) as a new final-mask version
   * and puts it in use: labels checked against 0/1/2/4, dims against the case, affine taken from the case
   * itself, compared with the mask it was edited from. Nothing is written while a plausibility warning is
   * not named in `confirm`; the answer then lists the warnings and the comparison instead.
   */
  async saveFinalMask(request: RequestOf<'saveFinalMask'>): Promise<SaveFinalResult> {
    const { caseId, nifti, confirm } = request;
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
    const provenance = this.provenanceOf(c, request.source);
    const sourceFile = this.sourceFile(c, request.source);
    const source = sourceFile ? await readLabelVolume(sourceFile) : null;
    if (source && source.data.length !== labels.length) throw new UserFacingError(`The source mask ${basename(sourceFile!)} does not have the grid of case ${caseId}.`);
    const voxelMl = Math.abs(header.pixdim[0] * header.pixdim[1] * header.pixdim[2]) / 1000;
    const comparison = compareMasks(labels, source?.data ?? null, voxelMl);
    const brain = await readNifti(c.files.flair ?? reference);
    const warnings = plausibilityWarnings(labels, comparison, brain.data as ArrayLike<number>, voxelMl);
    if (warnings.some((w) => !confirm.includes(w.code))) return { saved: false, comparison, warnings };

    const version = this.finals.nextVersion(c.id);
    this.finals.ensureDir(c.id);
    await writeNifti(this.finals.file(c.id, version), { dims: expected, affine: header.affine, datatype: 'uint8', data: labels });
    const entry = { version, savedAt: new Date().toISOString(), savedBy: userInfo().username, source: provenance, ...comparison, confirmedWarnings: warnings };
    this.finals.add(c.id, entry);
    this.store.appendAudit({
      kind: 'final-mask', at: entry.savedAt, caseId, action: 'saved', version, by: entry.savedBy,
      detail: `from ${describeProvenance(provenance)}${warnings.length ? `; accepted warnings: ${warnings.map((w) => w.message).join('; ')}` : ''}`,
    });
    return { saved: true, summary: this.summary(c), version: entry };
  }

  /** Puts a saved version (or with null the ground truth) back in use for training. */
  chooseFinalMask(caseId: string, version: number | null): CaseSummary {
    const c = this.get(caseId);
    if (version === null && !c.truth) throw new UserFacingError(`Case ${caseId} has no ground truth to go back to.`);
    try {
      this.finals.choose(c.id, version);
    } catch (err) {
      throw new UserFacingError(`${(err as Error).message}.`);
    }
    this.store.appendAudit({
      kind: 'final-mask', at: new Date().toISOString(), caseId, action: 'chosen', version, by: userInfo().username,
      detail: version === null ? 'the ground truth is used for training' : `final v${version} is used for training`,
    });
    return this.summary(c);
  }

  private finalVersionFile(caseId: string, version: number): string | null {
    return this.finals.versions(caseId).versions.some((v) => v.version === version) ? this.finals.file(caseId, version) : null;
  }

  private sourceFile(c: CaseEntry, source: RequestOf<'saveFinalMask'>['source']): string | null {
    if (source.kind === 'blank') return null;
    const file = source.kind === 'final' ? this.finalVersionFile(c.id, source.version) : this.fileOf(c, source.kind);
    if (!file || !existsSync(file)) throw new UserFacingError(`Case ${c.id} has no ${source.kind === 'final' ? `final mask version ${source.version}` : describe(source.kind)} to compare with.`);
    return file;
  }

  private provenanceOf(c: CaseEntry, source: RequestOf<'saveFinalMask'>['source']): MaskProvenance {
    if (source.kind === 'prediction') return { kind: 'prediction', ...(this.predictionModel(c.id) ?? { round: null, modelSha256: null }) };
    return source;
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
    if (kind === 'final') return this.finals.chosenFile(c.id);
    if (kind === 'prediction') return this.predictionPath(c.id);
    return c.files[kind] ?? null;
  }

  private summary(c: CaseEntry): CaseSummary {
    const has = {} as CaseSummary['has'];
    for (const m of MODALITIES) has[m] = Boolean(c.files[m]);
    has.truth = c.truth !== null;
    const finalMasks = this.finals.versions(c.id);
    has.final = finalMasks.chosen !== null;
    has.prediction = existsSync(this.predictionPath(c.id));
    const marks = this.store.review[c.id] ?? {};
    const status = has.final ? 'final' : Object.keys(marks).length > 0 ? 'in-review' : 'not-reviewed';
    const trainable = !c.issues.some((i) => i.severity === 'error') && (has.final || has.truth);
    return { id: c.id, dir: c.dir, has, status, issues: c.issues, trainable, metrics: c.metrics, finalMasks, prediction: this.predictionModel(c.id) };
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

export function describeProvenance(source: MaskProvenance): string {
  if (source.kind === 'truth') return 'the ground truth';
  if (source.kind === 'blank') return 'a blank mask';
  if (source.kind === 'final') return `final v${source.version}`;
  return `the prediction of the global model of round ${source.round ?? '?'} (${source.modelSha256?.slice(0, 12) ?? 'unknown hash'})`;
}

function describe(kind: Modality | MaskSource): string {
  if (kind === 'truth') return 'ground-truth mask';
  if (kind === 'final') return 'final (reviewed) mask';
  if (kind === 'prediction') return 'prediction yet; run "Predict" first';
  return `${kind.toUpperCase()} volume`;
}

