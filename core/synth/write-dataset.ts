import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as zlibConstants } from 'node:zlib';
import { FedSegError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { writeNifti } from '../nifti/index.js';
import { generateCase, type GenerateCaseOptions, type SyntheticCase } from './phantom.js';
import { deriveSeed, Prng } from './prng.js';
import { MODALITIES, siteProfile, type SiteProfile } from './site-profiles.js';

export interface SynthOptions {
  out: string;
  sites: number;
  casesPerSite: number;
  seed: number;
  /** Grid of each case; default the full 240 x 240 x 155 BraTS grid. Smaller grids make fast test datasets. */
  grid?: GenerateCaseOptions;
  /** Called after each case is on disk (progress reporting). */
  onCase?: (written: WrittenCase) => void;
}

export interface WrittenCase {
  site: number;
  caseId: string;
  dir: string;
  /** Tumour voxels (labels 1, 2, 4) in the whole volume. */
  tumourVoxels: number;
}

export interface SynthSiteReport {
  site: number;
  dir: string;
  profile: SiteProfile;
  cases: WrittenCase[];
}

export interface SynthReport {
  out: string;
  seed: number;
  sites: SynthSiteReport[];
}

/**
 * Run-length gzip: on noisy int16 MRI it is ~1 % larger than the default and ~2.5x faster, which
 * keeps a full case near 1 s. Output stays deterministic (fixed level and strategy, no timestamp).
 */
const FAST_GZIP = { level: 6, strategy: zlibConstants.Z_RLE };

/** BraTS 2020 training case id for a 1-based case number, e.g. 7 -> BraTS20_Training_007. */
export function trainingCaseId(caseNumber: number): string {
  return `BraTS20_Training_${String(caseNumber).padStart(3, '0')}`;
}

/**
 * Writes `sites` site folders of `casesPerSite` BraTS-layout cases each, plus each site's
 * name_mapping.csv and survival_info.csv. Case numbers run on across sites so ids are unique in the federation.
 * Each case folder appears complete or not at all (written to a `.tmp-<pid>` folder beside it, then renamed).
 */
export async function writeSyntheticDataset(options: SynthOptions): Promise<SynthReport> {
  const { out, sites, casesPerSite, seed } = options;
  checkCount(sites, 'sites');
  checkCount(casesPerSite, 'cases');
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new FedSegError(`seed must be an integer in 0..4294967295, got ${seed}`, { field: 'seed' });
  }
  const report: SynthReport = { out, seed, sites: [] };
  for (let site = 1; site <= sites; site++) {
    const profile = siteProfile(seed, site);
    const dir = join(out, `site-${site}`);
    await makeDir(dir);
    await removeLeftovers(dir);
    const siteReport: SynthSiteReport = { site, dir, profile, cases: [] };
    for (let index = 0; index < casesPerSite; index++) {
      const caseId = trainingCaseId((site - 1) * casesPerSite + index + 1);
      const generated = generateCase(seed, profile, index, options.grid);
      const caseDir = join(dir, caseId);
      await writeCaseFolder(caseDir, caseId, generated);
      const written: WrittenCase = { site, caseId, dir: caseDir, tumourVoxels: countTumour(generated.seg) };
      siteReport.cases.push(written);
      options.onCase?.(written);
    }
    const caseIds = siteReport.cases.map((c) => c.caseId);
    await writeFileAtomic(join(dir, 'name_mapping.csv'), nameMappingCsv(caseIds));
    await writeFileAtomic(join(dir, 'survival_info.csv'), survivalInfoCsv(caseIds, seed, site));
    report.sites.push(siteReport);
  }
  return report;
}

/** Writes one case's four modalities (int16) and mask (uint8) as a complete folder, replacing any old one. */
export async function writeCaseFolder(caseDir: string, caseId: string, data: SyntheticCase): Promise<void> {
  const staging = `${caseDir}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  try {
    await makeDir(staging);
    for (const modality of MODALITIES) {
      await writeNifti(join(staging, `${caseId}_${modality}.nii.gz`), {
        dims: data.dims, affine: data.affine, datatype: 'int16', data: data.modalities[modality], gzip: FAST_GZIP,
      });
    }
    await writeNifti(join(staging, `${caseId}_seg.nii.gz`), { dims: data.dims, affine: data.affine, datatype: 'uint8', data: data.seg, gzip: FAST_GZIP });
    await replaceDir(staging, caseDir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err instanceof FedSegError ? err : new FedSegError(`cannot write case (${(err as Error).message})`, { caseId, file: caseDir }, { cause: err });
  }
}

/** BraTS 2020 name_mapping.csv for synthetic cases: no earlier-release or TCGA ids exist. */
export function nameMappingCsv(caseIds: readonly string[]): string {
  const header = 'Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,BraTS_2019_subject_ID,BraTS_2020_subject_ID';
  return [header, ...caseIds.map((id) => `HGG,NA,NA,NA,NA,${id}`)].join('\n') + '\n';
}

/**
 * BraTS 2020 survival_info.csv with made-up clinical values (age, survival days, extent of
 * resection), including the release's quirk of one "ALIVE (N days later)" entry per file, so
 * readers of the real file are exercised. Drawn from its own stream: volumes do not depend on it.
 */
export function survivalInfoCsv(caseIds: readonly string[], seed: number, site: number): string {
  const rng = new Prng(deriveSeed(seed, site, 0x5c5f));
  const rows = caseIds.map((id, n) => {
    const age = (rng.uniform(35, 80)).toFixed(3);
    const days = rng.int(30, 1600);
    const survival = n === caseIds.length - 1 && caseIds.length > 1 ? `ALIVE (${days} days later)` : String(days);
    return `${id},${age},${survival},${rng.pick(['GTR', 'STR', 'NA'])}`;
  });
  return ['Brats20ID,Age,Survival_days,Extent_of_Resection', ...rows].join('\n') + '\n';
}

async function replaceDir(staging: string, target: string): Promise<void> {
  try {
    await rename(staging, target);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    // An older copy is in the way: move it aside first so the new folder still appears in one rename.
    const old = `${target}.old-${process.pid}`;
    await rename(target, old);
    await rename(staging, target);
    await rm(old, { recursive: true, force: true });
  }
}

/** Staging folders and files of an earlier run that was killed mid-write (`x.tmp-<pid>[-<n>]`, `x.old-<pid>`). */
async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (/\.(tmp|old)-\d+(-\d+)?$/.test(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}

async function makeDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new FedSegError(`cannot create folder (${(err as Error).message})`, { file: dir }, { cause: err });
  }
}

function checkCount(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 999) {
    throw new FedSegError(`${field} must be an integer in 1..999, got ${value}`, { field });
  }
}

function countTumour(seg: Uint8Array): number {
  let count = 0;
  for (let n = 0; n < seg.length; n++) if (seg[n] !== 0) count++;
  return count;
}
