/**
 * I/O benchmark: time and peak memory to load and preprocess one gzipped full-size case
 * (FLAIR, T1ce, T2 + mask, 240x240x155 -> 128^3 x 3), against the targets of < 1.5 s and
 * < 400 MB; plus synthetic-case generation and NIfTI write times. Loading is measured in a fresh
 * child process so its peak RSS is the loader's own, not the synthesiser's.
 *
 *   node --import tsx bench/io.ts [--quick]     (also `fedseg bench io`)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { discoverCase } from '../core/brats/index.js';
import { readNifti } from '../core/nifti/index.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { caseVolumesFromFiles, preprocessCase, preprocessConfig, writePreprocessedCase } from '../core/preprocess/index.js';
import { generateCase, siteProfile, writeCaseFolder } from '../core/synth/index.js';

const TARGET_SECONDS = 1.5;
const TARGET_MB = 400;
const CASE_ID = 'BraTS20_Training_001';

/** What the child process measures. */
interface LoadMeasurement {
  baselineRssMb: number;
  peakRssMb: number;
  firstLoadPreprocessMs: number;
  /** CPU time (user + system) of the first run: what the wall time would be on an idle machine. */
  firstLoadPreprocessCpuMs: number;
  bestLoadPreprocessMs: number;
  readOneModalityMs: number;
  writeOutputMs: number;
}

export interface IoBenchResult {
  table: string;
  json: {
    name: 'io';
    synthGenerateMs: number;
    synthWriteMs: number;
    /** CPU time to generate and write one case (the synth target is < 1.5 s per case). */
    synthCaseCpuMs: number;
    load: LoadMeasurement;
    targets: { seconds: number; megabytes: number };
    meetsTargets: boolean;
    loadAverage: number;
  };
}

export async function runIoBench(options: { quick?: boolean } = {}): Promise<IoBenchResult> {
  const repeats = options.quick ? 2 : 4;
  const dir = mkdtempSync(join(tmpdir(), 'fedseg-bench-io-'));
  try {
    let started = performance.now();
    let cpu = process.cpuUsage();
    const generated = generateCase(1, siteProfile(1, 1), 0);
    const synthGenerateMs = performance.now() - started;
    const synthGenerateCpuMs = cpuMsSince(cpu);
    const caseDir = join(dir, CASE_ID);
    started = performance.now();
    cpu = process.cpuUsage();
    await writeCaseFolder(caseDir, CASE_ID, generated);
    const synthWriteMs = performance.now() - started;
    const synthWriteCpuMs = cpuMsSince(cpu);

    const child = spawnSync(process.execPath, nodeArgs(new URL(import.meta.url), ['--measure', caseDir, String(repeats), join(dir, 'out')]), {
      encoding: 'utf8',
    });
    if (child.status !== 0) throw new Error(`load measurement failed: ${child.stderr}`);
    const load = JSON.parse(child.stdout.trim().split('\n').pop() as string) as LoadMeasurement;
    const meetsTargets = load.firstLoadPreprocessMs / 1000 < TARGET_SECONDS && load.peakRssMb < TARGET_MB;
    const rows: [string, string, string][] = [
      ['synth: generate one 240x240x155 case (4 modalities + mask)', ms(synthGenerateMs), ''],
      ['  CPU time', ms(synthGenerateCpuMs), ''],
      ['synth: write it as 5 .nii.gz files (atomic)', ms(synthWriteMs), ''],
      ['  CPU time', ms(synthWriteCpuMs), ''],
      ['synth: one case in all, CPU time', ms(synthGenerateCpuMs + synthWriteCpuMs), `< ${TARGET_SECONDS * 1000} ms`],
      ['read one gzipped int16 modality (readNifti)', ms(load.readOneModalityMs), ''],
      ['load + preprocess one case, first run (fresh process)', ms(load.firstLoadPreprocessMs), `< ${TARGET_SECONDS * 1000} ms`],
      ['  CPU time of that run (wall time on an idle machine)', ms(load.firstLoadPreprocessCpuMs), ''],
      [`load + preprocess one case, best of ${repeats}`, ms(load.bestLoadPreprocessMs), ''],
      ['write image.nii.gz + mask.nii.gz', ms(load.writeOutputMs), ''],
      ['peak RSS of the loading process', `${load.peakRssMb.toFixed(0)} MB`, `< ${TARGET_MB} MB`],
      ['  of which node + modules before loading', `${load.baselineRssMb.toFixed(0)} MB`, ''],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    const table = [
      `${'io (one gzipped BraTS-size case)'.padEnd(width)}  ${'value'.padStart(9)}  target`,
      ...rows.map(([label, value, target]) => `${label.padEnd(width)}  ${value.padStart(9)}  ${target}`),
      `targets ${meetsTargets ? 'met' : 'NOT met'} (machine load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs)`,
    ].join('\n');
    return {
      table,
      json: {
        name: 'io',
        synthGenerateMs: round(synthGenerateMs),
        synthWriteMs: round(synthWriteMs),
        synthCaseCpuMs: round(synthGenerateCpuMs + synthWriteCpuMs),
        load,
        targets: { seconds: TARGET_SECONDS, megabytes: TARGET_MB },
        meetsTargets,
        loadAverage: round(loadavg()[0]),
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Child side: load + preprocess the case `repeats` times, then write the output once. */
async function measure(caseDir: string, repeats: number, outDir: string): Promise<LoadMeasurement> {
  const config = preprocessConfig();
  const baselineRssMb = process.memoryUsage().rss / 2 ** 20;
  const times: number[] = [];
  let firstCpuMs = 0;
  let last;
  for (let run = 0; run < repeats; run++) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    last = await preprocessCase(caseVolumesFromFiles(await discoverCase(caseDir), config), config);
    times.push(performance.now() - started);
    if (run === 0) {
      firstCpuMs = cpuMsSince(cpu);
    }
  }
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  let started = performance.now();
  await readNifti(join(caseDir, `${CASE_ID}_flair.nii.gz`));
  const readOneModalityMs = performance.now() - started;
  started = performance.now();
  if (last) await writePreprocessedCase(last, outDir);
  const writeOutputMs = performance.now() - started;
  return {
    baselineRssMb: round(baselineRssMb),
    peakRssMb: round(peakRssMb),
    firstLoadPreprocessMs: round(times[0]),
    firstLoadPreprocessCpuMs: round(firstCpuMs),
    bestLoadPreprocessMs: round(Math.min(...times)),
    readOneModalityMs: round(readOneModalityMs),
    writeOutputMs: round(writeOutputMs),
  };
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function ms(value: number): string {
  return `${value.toFixed(0)} ms`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  if (args[0] === '--measure') {
    process.stdout.write(`${JSON.stringify(await measure(args[1], Number(args[2]), args[3]))}\n`);
  } else {
    const result = await runIoBench({ quick: args.includes('--quick') });
    process.stdout.write(`${result.table}\n${JSON.stringify(result.json)}\n`);
  }
}
