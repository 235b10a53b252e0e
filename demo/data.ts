/**
 * The demo's synthetic hospitals: generated once under `<out>/data` and reused on later runs.
 * Each site's cases are split into `train/` and `heldout/` folders so the site trainer, the
 * baselines and the evaluation all see the same split.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { FedSegError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs/atomic-write.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { nameMappingCsv, siteProfile, survivalInfoCsv, trainingCaseId } from '../core/synth/index.js';

export const DataManifestSchema = z.object({
  seed: z.int(),
  /** Mean cases per site; each site has its profile's share of it (siteCaseCount). */
  casesPerSite: z.int().positive(),
  heldOutPerSite: z.int().positive(),
  /** Case ids per site; folders are `<dataDir>/<name>/{train,heldout}/<id>` so the data folder can move. */
  sites: z.array(z.object({
    name: z.string().regex(/^site-\d+$/),
    train: z.array(z.string()),
    heldOut: z.array(z.string()),
  })),
});
export type DataManifest = z.infer<typeof DataManifestSchema>;

export interface DemoSite {
  name: string;
  trainDir: string;
  heldOutDir: string;
  train: string[];
  heldOut: string[];
}

export interface DataRequest { dataDir: string; sites: number; casesPerSite: number; heldOutPerSite: number; seed: number }

const MANIFEST = 'demo-data.json';

/**
 * Cases at one synthetic hospital: the mean scaled by its profile's case share (referral centres
 * have more gliomas than community hospitals), and at least two more than the held-out cases.
 */
export function siteCaseCount(seed: number, site: number, mean: number, heldOut: number): number {
  return Math.max(heldOut + 2, Math.round(mean * siteProfile(seed, site).caseShare));
}
const SYNTH_WORKER = new URL('./synth-worker.js', import.meta.url);

/**
 * Returns the split of the first `sites` sites, generating the whole dataset first unless a
 * complete one with the same seed and case counts is already there.
 */
export async function ensureDemoData(request: DataRequest, log: (line: string) => void): Promise<{ sites: DemoSite[]; generated: boolean }> {
  if (request.heldOutPerSite >= request.casesPerSite) {
    throw new FedSegError(`held-out cases per site (${request.heldOutPerSite}) must be fewer than cases per site (${request.casesPerSite})`, { field: 'heldOut' });
  }
  const existing = await readManifest(request.dataDir);
  if (existing && reusable(existing, request)) {
    log(`reusing synthetic data in ${request.dataDir}`);
    return { sites: existing.sites.slice(0, request.sites).map((s) => locate(request.dataDir, s)), generated: false };
  }
  await rm(request.dataDir, { recursive: true, force: true });
  await mkdir(request.dataDir, { recursive: true });
  log(`generating ${request.sites} synthetic sites x ${request.casesPerSite} cases (240x240x155, 4 modalities + mask) in ${request.dataDir}`);
  await generateInParallel(request, log);
  const sites: DemoSite[] = [];
  for (const [n, numbers] of caseNumbers(request).entries()) {
    const name = `site-${n + 1}`;
    const siteDir = join(request.dataDir, name);
    const ids = numbers.map(trainingCaseId);
    await writeFileAtomic(join(siteDir, 'name_mapping.csv'), nameMappingCsv(ids));
    await writeFileAtomic(join(siteDir, 'survival_info.csv'), survivalInfoCsv(ids, request.seed, n + 1));
    const { trainDir, heldOutDir } = locate(request.dataDir, { name, train: [], heldOut: [] });
    await mkdir(trainDir, { recursive: true });
    await mkdir(heldOutDir, { recursive: true });
    // The last cases of each site are held out: deterministic and disjoint from training.
    const heldOut = ids.slice(ids.length - request.heldOutPerSite);
    const train = ids.slice(0, ids.length - request.heldOutPerSite);
    for (const id of train) await rename(join(siteDir, id), join(trainDir, id));
    for (const id of heldOut) await rename(join(siteDir, id), join(heldOutDir, id));
    sites.push({ name, trainDir, heldOutDir, train, heldOut });
  }
  const manifest: DataManifest = {
    seed: request.seed, casesPerSite: request.casesPerSite, heldOutPerSite: request.heldOutPerSite,
    sites: sites.map(({ name, train, heldOut }) => ({ name, train, heldOut })),
  };
  await writeFileAtomic(join(request.dataDir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return { sites, generated: true };
}

function reusable(m: DataManifest, r: DataRequest): boolean {
  return m.seed === r.seed && m.casesPerSite === r.casesPerSite && m.heldOutPerSite === r.heldOutPerSite
    && m.sites.length >= r.sites
    && m.sites.slice(0, r.sites).map((s) => locate(r.dataDir, s))
      .every((s) => [...s.train.map((id) => join(s.trainDir, id)), ...s.heldOut.map((id) => join(s.heldOutDir, id))].every((dir) => existsSync(dir)));
}

function locate(dataDir: string, site: DataManifest['sites'][number]): DemoSite {
  return { ...site, trainDir: join(dataDir, site.name, 'train'), heldOutDir: join(dataDir, site.name, 'heldout') };
}

async function readManifest(dataDir: string): Promise<DataManifest | null> {
  const file = join(dataDir, MANIFEST);
  if (!existsSync(file)) return null;
  const parsed = DataManifestSchema.safeParse(JSON.parse(await readFile(file, 'utf8').catch(() => 'null')));
  return parsed.success ? parsed.data : null;
}

/** Case numbers of each site, running on across sites so ids are unique in the federation. */
function caseNumbers(request: DataRequest): number[][] {
  let next = 1;
  return Array.from({ length: request.sites }, (_, n) => {
    const count = siteCaseCount(request.seed, n + 1, request.casesPerSite, request.heldOutPerSite);
    const numbers = Array.from({ length: count }, (_, index) => next + index);
    next += count;
    return numbers;
  });
}

/** Splits the case list round-robin over one synth-worker process per core (at most 4). */
async function generateInParallel(request: DataRequest, log: (line: string) => void): Promise<void> {
  const all = caseNumbers(request).flatMap((numbers, n) => numbers.map((caseNumber, index): [number, number, number] => [n + 1, index, caseNumber]));
  const workers = Math.max(1, Math.min(4, cpus().length, all.length));
  const started = Date.now();
  let done = 0;
  const children: ChildProcess[] = [];
  const running = Array.from({ length: workers }, (_, w) => new Promise<void>((resolve, reject) => {
    const job = { dataDir: request.dataDir, seed: request.seed, cases: all.filter((_, n) => n % workers === w) };
    const child = spawn(process.execPath, nodeArgs(SYNTH_WORKER, [JSON.stringify(job)]), { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const { site, caseId } = JSON.parse(line) as { site: number; caseId: string };
      done++;
      log(`  site-${site} ${caseId} written (${done}/${all.length}, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve()
      : reject(new FedSegError(`synthetic data generation failed: ${stderr.trim() || `worker exited with code ${code}`}`, { file: request.dataDir }))));
  }));
  try {
    await Promise.all(running);
  } catch (err) {
    // One worker failed: the others' cases would be discarded anyway.
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    throw err;
  }
}
