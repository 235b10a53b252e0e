/**
 * Finding BraTS cases on disk. A case is a folder holding NIfTI files; a dataset is a folder of
 * cases, possibly one level of grouping deeper (e.g. one folder per site). Files are recognised by
 * their suffix: `<id>_{flair,t1,t1ce,t2,seg}.nii[.gz]` and `<id>_final_seg.nii[.gz]` (the mask a
 * reviewer marked final in the desktop app). A case with no `_seg` file and exactly one other NIfTI
 * uses that file as its mask: the BraTS 2020 case-355 quirk (`W39_1998.09.19_Segm.nii`).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FedSegError } from '../errors.js';
import { type ClinicalInfo, emptyClinicalInfo, readClinicalInfo } from './clinical.js';
import type { Modality } from './labels.js';

export type CaseSplit = 'training' | 'validation' | 'unknown';

export interface CaseProblem {
  file: string;
  reason: string;
}

export interface BratsCaseFiles {
  /** The case folder's name, e.g. BraTS20_Training_001. */
  caseId: string;
  dir: string;
  /** From the folder name: training cases must have a mask, validation cases have none. */
  split: CaseSplit;
  modalities: Partial<Record<Modality, string>>;
  /** Ground-truth mask: the `_seg` file, or the single unrecognised NIfTI (case-355 quirk). */
  mask: string | null;
  maskSource: 'seg' | 'single-extra-nifti' | null;
  /** `<id>_final_seg.nii[.gz]`: a reviewed mask; preferred over `mask` for training when present. */
  finalMask: string | null;
  /** NIfTI files that are none of the above (not used). */
  extraFiles: string[];
  /** What discovery already found wrong (duplicate files); validation adds to these. */
  problems: CaseProblem[];
  notes: string[];
}

export interface BratsDataset {
  root: string;
  cases: BratsCaseFiles[];
  clinical: ClinicalInfo;
}

const NIFTI = /\.nii(\.gz)?$/i;
const ROLE = /_(final_seg|flair|t1ce|t1|t2|seg)\.nii(?:\.gz)?$/i;
/** How many folder levels below the root are searched for case folders (root/site/case). */
const MAX_DEPTH = 3;

export async function discoverDataset(root: string): Promise<BratsDataset> {
  const info = await statOrNull(root);
  if (!info) throw new FedSegError('dataset folder does not exist', { file: root });
  if (!info.isDirectory()) throw new FedSegError('is a file, not a dataset folder', { file: root });
  const caseDirs: string[] = [];
  const groupDirs = new Set<string>([root]);
  await collectCaseDirs(root, 0, caseDirs, groupDirs);
  if (caseDirs.length === 0) {
    throw new FedSegError(
      'no BraTS cases found: no folder here holds NIfTI files (expected e.g. BraTS20_Training_001/BraTS20_Training_001_flair.nii.gz)',
      { file: root },
    );
  }
  caseDirs.sort();
  const cases: BratsCaseFiles[] = [];
  for (const dir of caseDirs) cases.push(await discoverCase(dir));
  markDuplicateIds(cases);
  return { root, cases, clinical: await readClinicalInfo([...groupDirs].sort(), emptyClinicalInfo()) };
}

/** Classifies the NIfTI files of one case folder. */
export async function discoverCase(dir: string): Promise<BratsCaseFiles> {
  const caseId = basename(dir);
  const names = (await listDir(dir)).filter((e) => e.isFile && NIFTI.test(e.name) && !isTemporary(e.name)).map((e) => e.name).sort();
  const found: BratsCaseFiles = {
    caseId, dir, split: splitOf(caseId), modalities: {}, mask: null, maskSource: null, finalMask: null,
    extraFiles: [], problems: [], notes: [],
  };
  const seen = new Map<string, string>();
  for (const name of names) {
    const role = ROLE.exec(name)?.[1]?.toLowerCase();
    const path = join(dir, name);
    if (!role) {
      found.extraFiles.push(path);
      continue;
    }
    const earlier = seen.get(role);
    if (earlier) {
      found.problems.push({ file: path, reason: `second ${role} file (also ${basename(earlier)}); keep only one` });
      continue;
    }
    seen.set(role, path);
    if (role === 'seg') [found.mask, found.maskSource] = [path, 'seg'];
    else if (role === 'final_seg') found.finalMask = path;
    else found.modalities[role as Modality] = path;
  }
  if (!found.mask && found.extraFiles.length === 1) {
    found.mask = found.extraFiles[0];
    found.maskSource = 'single-extra-nifti';
    found.extraFiles = [];
    found.notes.push(`mask is ${basename(found.mask)}: no *_seg file, and it is the only other NIfTI (the BraTS 2020 case-355 naming quirk)`);
  } else if (found.extraFiles.length > 0) {
    found.notes.push(`ignored NIfTI files that are not a modality or mask: ${found.extraFiles.map((f) => basename(f)).join(', ')}`);
  }
  return found;
}

/** Expected path of a missing file, so a report can name what it looked for. */
export function expectedPath(caseFiles: Pick<BratsCaseFiles, 'dir' | 'caseId'>, role: Modality | 'seg'): string {
  return join(caseFiles.dir, `${caseFiles.caseId}_${role}.nii.gz`);
}

function splitOf(caseId: string): CaseSplit {
  if (/validation/i.test(caseId)) return 'validation';
  if (/training/i.test(caseId)) return 'training';
  return 'unknown';
}

async function collectCaseDirs(dir: string, depth: number, caseDirs: string[], groupDirs: Set<string>): Promise<void> {
  const entries = await listDir(dir);
  if (entries.some((e) => e.isFile && NIFTI.test(e.name) && !isTemporary(e.name))) {
    caseDirs.push(dir);
    return;
  }
  if (depth >= MAX_DEPTH) return;
  for (const entry of entries) {
    if (!entry.isDirectory || entry.name.startsWith('.') || isTemporary(entry.name)) continue;
    const child = join(dir, entry.name);
    const before = caseDirs.length;
    await collectCaseDirs(child, depth + 1, caseDirs, groupDirs);
    // A folder whose children are cases may hold the side CSVs (dataset root or a site folder).
    if (caseDirs.length > before) groupDirs.add(dir);
  }
}

/** Leftovers of an interrupted atomic write (`x.tmp-<pid>`, `x.old-<pid>`) are not data. */
function isTemporary(name: string): boolean {
  return /\.(tmp|old)-\d+(-\d+)?$/.test(name);
}

function markDuplicateIds(cases: BratsCaseFiles[]): void {
  const byId = new Map<string, BratsCaseFiles[]>();
  for (const c of cases) byId.set(c.caseId, [...(byId.get(c.caseId) ?? []), c]);
  for (const group of byId.values()) {
    if (group.length < 2) continue;
    for (const c of group) c.notes.push(`case id ${c.caseId} also used by ${group.filter((o) => o !== c).map((o) => o.dir).join(', ')}`);
  }
}

interface DirEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
}

/** Folder entries with symbolic links followed (hospitals often link data in); a broken link counts as a file so reading it reports why. */
async function listDir(dir: string): Promise<DirEntry[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new FedSegError(`cannot list folder (${(err as Error).message})`, { file: dir }, { cause: err });
  }
  return Promise.all(entries.map(async (e) => {
    if (!e.isSymbolicLink()) return { name: e.name, isFile: e.isFile(), isDirectory: e.isDirectory() };
    const target = await stat(join(dir, e.name)).catch(() => null);
    return { name: e.name, isFile: target ? target.isFile() : true, isDirectory: target?.isDirectory() ?? false };
  }));
}

async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw new FedSegError(`cannot open (${(err as Error).message})`, { file: path }, { cause: err });
  }
}
