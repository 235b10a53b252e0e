/** report.json, report.html and RESULTS-federated.md of `fedseg experiment`. */
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../core/fs/atomic-write.js';
import { FedSegError } from '../core/errors.js';
import { ARCHITECTURES, type Architecture } from '../core/model/config.js';
import { ComparisonRowSchema, PrivacyRecordSchema, type ComparisonRow, type PrivacyRecord } from '../core/report/index.js';
import { alignTable, escapeXml, lineChart, type Series } from '../core/report/index.js';
import type { SiteScore } from './scores.js';
import { meanOver, type RoundScores } from './simulate.js';

export interface ExperimentRun {
  method: ComparisonRow['method'];
  strategy: string;
  model: Architecture;
  seed: number;
  /** Final model's held-out scores at each site. */
  perSite: Record<string, SiteScore>;
  /** Federated only: every round's global model at every site. */
  curve?: RoundScores[];
  /** Federated runs with differential privacy: its settings and the epsilon spent. */
  privacy?: PrivacyRecord;
  seconds: number;
}

export interface ExperimentReport {
  createdAt: string;
  backend: string;
  machine: { cpus: number; cpuModel: string; loadAverageStart: number };
  settings: {
    sites: Array<{ name: string; train: number; heldOut: number }>;
    rounds: number; localEpochs: number; downsample: number; window: number; baseFilters: number; depth: number;
    learningRate: number; batchSize: number; models: Architecture[]; seeds: number[]; strategies: string[]; dataSeed: number;
    evaluateEvery: number;
    /** Every federation ran under secure aggregation with this threshold. */
    secureAggregation?: { threshold: number };
  };
  comparison: ComparisonRow[];
  runs: ExperimentRun[];
  /** matrix[trainedAt][scoredAt] of the local-only models. */
  crossSite: Array<{ model: Architecture; seed: number; matrix: Record<string, Record<string, SiteScore>> }>;
  seconds: number;
}

type Region = 'ET' | 'TC' | 'WT';
const REGIONS: Region[] = ['WT', 'TC', 'ET'];

function meanSd(values: number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd };
}
const pm = (v: { mean: number; sd: number }, digits = 3) => `${v.mean.toFixed(digits)} ± ${v.sd.toFixed(digits)}`;
const label = (run: Pick<ExperimentRun, 'method' | 'strategy'>) => (run.method === 'federated' ? `federated (${run.strategy})` : run.method);

/** One line per model x method: mean ± sd over seeds of the mean over all held-out cases. */
export function summaryRows(report: ExperimentReport): Array<{ model: Architecture; method: string; dice: Record<Region, { mean: number; sd: number }>; hd95: Record<Region, { mean: number; sd: number }>; seeds: number }> {
  const groups = new Map<string, ExperimentRun[]>();
  for (const run of report.runs) {
    const key = `${run.model}\u0000${label(run)}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups.entries()].map(([key, runs]) => {
    const [model, method] = key.split('\u0000') as [Architecture, string];
    const means = runs.map((r) => meanOver(r.perSite));
    const stat = (metric: 'dice' | 'hd95') => Object.fromEntries(REGIONS.map((r) => [r, meanSd(means.map((m) => m[metric][r]))])) as Record<Region, { mean: number; sd: number }>;
    return { model, method, dice: stat('dice'), hd95: stat('hd95'), seeds: runs.length };
  });
}

/** Did the federation pay off? Best federated WT against 0.97 x centralised and against local-only + its spread. */
export function verdicts(report: ExperimentReport): string[] {
  const rows = summaryRows(report);
  return report.settings.models.flatMap((model) => {
    const mine = rows.filter((r) => r.model === model);
    const fed = mine.filter((r) => r.method.startsWith('federated')).sort((a, b) => b.dice.WT.mean - a.dice.WT.mean)[0];
    const local = mine.find((r) => r.method === 'local-only');
    const central = mine.find((r) => r.method === 'centralised');
    if (!fed || !local || !central) return [];
    const ratio = fed.dice.WT.mean / central.dice.WT.mean;
    const margin = fed.dice.WT.mean - local.dice.WT.mean;
    const spread = Math.max(fed.dice.WT.sd, local.dice.WT.sd);
    return [`${model}: best federated strategy ${fed.method} reaches WT Dice ${pm(fed.dice.WT)}; that is ${(100 * ratio).toFixed(1)} % of centralised `
      + `(${pm(central.dice.WT)}; target at least 97 %: ${ratio >= 0.97 ? 'met' : 'not met'}) and ${margin >= 0 ? '+' : ''}${margin.toFixed(3)} over local-only `
      + `(${pm(local.dice.WT)}; target: more than the seed spread ${spread.toFixed(3)}: ${margin > spread ? 'met' : 'not met'}).`];
  });
}

function summaryTable(report: ExperimentReport): string {
  return alignTable(
    ['model', 'training', 'seeds', 'WT Dice', 'TC Dice', 'ET Dice', 'WT HD95 mm', 'TC HD95 mm', 'ET HD95 mm'],
    summaryRows(report).map((r) => [r.model, r.method, String(r.seeds), pm(r.dice.WT), pm(r.dice.TC), pm(r.dice.ET), pm(r.hd95.WT, 1), pm(r.hd95.TC, 1), pm(r.hd95.ET, 1)]),
  );
}

function perSiteTable(report: ExperimentReport): string {
  const siteNames = report.settings.sites.map((s) => s.name);
  const rows: string[][] = [];
  for (const model of report.settings.models) {
    const groups = new Map<string, ExperimentRun[]>();
    for (const run of report.runs.filter((r) => r.model === model)) groups.set(label(run), [...(groups.get(label(run)) ?? []), run]);
    for (const [method, runs] of groups) {
      rows.push([model, method, ...siteNames.map((site) => meanSd(runs.map((r) => r.perSite[site]?.dice.WT ?? NaN)).mean.toFixed(3))]);
    }
  }
  return alignTable(['model', 'training', ...siteNames.map((s) => `${s} WT`)], rows);
}

function crossSiteTable(report: ExperimentReport, model: Architecture): string {
  const entries = report.crossSite.filter((c) => c.model === model);
  if (entries.length === 0) return '';
  const names = report.settings.sites.map((s) => s.name);
  return alignTable(['trained at \\ scored at', ...names], names.map((from) => [from, ...names.map((to) => meanSd(entries.map((e) => e.matrix[from][to].dice.WT)).mean.toFixed(3))]));
}

/** A federated run's name in the report: the strategy, "+secagg" under secure aggregation. */
export function federationLabel(strategy: string, secure: boolean): string {
  return secure ? `${strategy}+secagg` : strategy;
}

/** The original project's table: per hospital, per round, both models (FedAvg, first seed), WT/TC/ET Dice. */
function seedTable(report: ExperimentReport): string {
  const seed = report.settings.seeds[0];
  const fedavg = federationLabel('fedavg', report.settings.secureAggregation !== undefined);
  const runs = report.settings.models.map((model) => report.runs.find((r) => r.model === model && r.seed === seed && r.method === 'federated' && r.strategy === fedavg));
  const rows: string[][] = [];
  for (const site of report.settings.sites.map((s) => s.name)) {
    for (const round of curveRounds(report)) {
      rows.push([site, String(round), ...runs.flatMap((run) => {
        const s = run && curveAt(run, round)?.perSite[site];
        return s ? [s.dice.WT, s.dice.TC, s.dice.ET].map((v) => v.toFixed(3)) : ['-', '-', '-'];
      })]);
    }
  }
  return alignTable(['hospital', 'round', ...report.settings.models.flatMap((m) => [`${m} WT`, `${m} TC`, `${m} ET`])], rows);
}

/** Rounds at which the global model was scored (every evaluateEvery rounds and the last). */
function curveRounds(report: ExperimentReport): number[] {
  const { rounds, evaluateEvery } = report.settings;
  return Array.from({ length: rounds }, (_, n) => n + 1).filter((r) => r % evaluateEvery === 0 || r === rounds);
}

function curveAt(run: ExperimentRun, round: number): RoundScores | undefined {
  return run.curve?.find((c) => c.round === round);
}

function curveTable(report: ExperimentReport): string {
  const points = curveRounds(report);
  const rows: string[][] = [];
  for (const model of report.settings.models) {
    for (const strategy of report.settings.strategies) {
      const runs = report.runs.filter((r) => r.model === model && r.method === 'federated' && r.strategy === strategy && r.curve);
      if (runs.length === 0) continue;
      rows.push([model, strategy, ...points.map((round) => pm(meanSd(runs.map((r) => meanOver(curveAt(r, round)!.perSite).dice.WT)), 3))]);
    }
  }
  return alignTable(['model', 'strategy', ...points.map((round) => `round ${round} WT`)], rows);
}

function settingsText(report: ExperimentReport): string {
  const s = report.settings;
  return [
    `- Sites (training / held-out cases): ${s.sites.map((x) => `${x.name} ${x.train}/${x.heldOut}`).join(', ')}; synthetic data seed ${s.dataSeed}.`,
    `- Model input: the 128^3 crop downsampled x${s.downsample} (${s.window}^3 voxels of ${s.downsample} mm), base filters ${s.baseFilters}, depth ${s.depth}; Adam lr ${s.learningRate}, batch ${s.batchSize}.`,
    `- Budget per site: ${s.rounds} rounds x ${s.localEpochs} local epochs; local-only and centralised get ${s.rounds * s.localEpochs} epochs over their own cases, from the same initial weights.`,
    ...(s.secureAggregation ? [`- Secure aggregation in every federated round (threshold ${s.secureAggregation.threshold} of ${s.sites.length} sites, clip range 1).`] : []),
    `- Seeds ${s.seeds.join(', ')}; strategies ${s.strategies.join(', ')}; backend ${report.backend}; ${report.machine.cpus} x ${report.machine.cpuModel}; ${(report.seconds / 60).toFixed(1)} min.`,
    '- Dice and HD95 are means over every site\'s held-out cases (BraTS regions, full 240x240x155 grid); ± is the standard deviation over seeds.',
  ].join('\n');
}

export function renderExperimentMarkdown(report: ExperimentReport): string {
  const fence = (t: string) => `\`\`\`\n${t}\n\`\`\``;
  return [
    '# Federated against local-only and centralised (`fedseg experiment`)', '',
    settingsText(report), '',
    '## Verdict', '', ...verdicts(report).map((v) => `- ${v}`), '',
    '## Mean over all held-out cases', '', fence(summaryTable(report)), '',
    '## Per hospital (WT Dice, mean over seeds)', '', fence(perSiteTable(report)), '',
    '## Learning curves (mean WT Dice over all held-out cases, per round)', '', fence(curveTable(report)), '',
    ...report.settings.models.flatMap((m) => [`## Cross-site matrix, ${m} (local-only WT Dice, mean over seeds)`, '', fence(crossSiteTable(report, m)), '']),
    '## The original project\'s table: per hospital, per round, both models (FedAvg, first seed)', '', fence(seedTable(report)), '',
  ].join('\n');
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

export function renderExperimentHtml(report: ExperimentReport): string {
  const points = curveRounds(report);
  const charts = report.settings.models.map((model) => {
    const series: Series[] = report.settings.strategies.map((strategy, n) => {
      const runs = report.runs.filter((r) => r.model === model && r.method === 'federated' && r.strategy === strategy && r.curve);
      return { name: strategy, colour: COLOURS[n % COLOURS.length], values: points.map((round) => (runs.length ? meanSd(runs.map((r) => meanOver(curveAt(r, round)!.perSite).dice.WT)).mean : null)) };
    });
    for (const [n, method] of (['local-only', 'centralised'] as const).entries()) {
      const runs = report.runs.filter((r) => r.model === model && r.method === method);
      if (runs.length) series.push({ name: method, colour: COLOURS[(3 + n) % COLOURS.length], dashed: true, values: Array(points.length).fill(meanSd(runs.map((r) => meanOver(r.perSite).dice.WT)).mean) });
    }
    return lineChart(`${model}: mean held-out WT Dice`, points.map((round) => `r${round}`), series);
  });
  const pre = (t: string) => `<pre>${escapeXml(t)}</pre>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>FedSeg experiment</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>body{font:14px system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.tick{font-size:11px}</style></head><body>
<h1>Federated against local-only and centralised</h1>
${pre(settingsText(report))}
<h2>Verdict</h2><ul>${verdicts(report).map((v) => `<li>${escapeXml(v)}</li>`).join('')}</ul>
<h2>Mean over all held-out cases</h2>${pre(summaryTable(report))}
<h2>Learning curves</h2>${charts.join('\n')}${pre(curveTable(report))}
<h2>Per hospital</h2>${pre(perSiteTable(report))}
${report.settings.models.map((m) => `<h2>Cross-site matrix, ${escapeXml(m)}</h2>${pre(crossSiteTable(report, m))}`).join('\n')}
<h2>Per hospital, per round, both models (FedAvg, first seed)</h2>${pre(seedTable(report))}
</body></html>
`;
}

const RegionValuesSchema = z.object({ ET: z.number(), TC: z.number(), WT: z.number() });
const SiteScoreSchema = z.object({ numCases: z.int().nonnegative(), dice: RegionValuesSchema, hd95: RegionValuesSchema });
const PerSiteSchema = z.record(z.string(), SiteScoreSchema);
const ArchSchema = z.enum(ARCHITECTURES);

/** report.json read back (`fedseg experiment --combine`). */
export const ExperimentReportSchema = z.object({
  createdAt: z.string(),
  backend: z.string(),
  machine: z.object({ cpus: z.int(), cpuModel: z.string(), loadAverageStart: z.number() }),
  settings: z.object({
    sites: z.array(z.object({ name: z.string(), train: z.int(), heldOut: z.int() })),
    rounds: z.int(), localEpochs: z.int(), downsample: z.int(), window: z.int(), baseFilters: z.int(), depth: z.int(),
    learningRate: z.number(), batchSize: z.int(), models: z.array(ArchSchema), seeds: z.array(z.int()), strategies: z.array(z.string()),
    dataSeed: z.int(), evaluateEvery: z.int(), secureAggregation: z.object({ threshold: z.int() }).optional(),
  }),
  comparison: z.array(ComparisonRowSchema),
  runs: z.array(z.object({
    method: ComparisonRowSchema.shape.method, strategy: z.string(), model: ArchSchema, seed: z.int(), perSite: PerSiteSchema,
    curve: z.array(z.object({ round: z.int(), perSite: PerSiteSchema })).optional(), privacy: PrivacyRecordSchema.optional(), seconds: z.number(),
  })),
  crossSite: z.array(z.object({ model: ArchSchema, seed: z.int(), matrix: z.record(z.string(), PerSiteSchema) })),
  seconds: z.number(),
});

/**
 * Several runs of the same experiment with different seeds (e.g. one process per seed on a machine
 * with cores to spare) as one report. Every setting but the seeds must agree; `sources` name the files.
 */
export function combineReports(reports: readonly ExperimentReport[], sources: readonly string[]): ExperimentReport {
  const [first, ...rest] = reports;
  const comparable = (r: ExperimentReport) => JSON.stringify({ ...r.settings, seeds: [] });
  rest.forEach((r, n) => {
    if (comparable(r) !== comparable(first)) throw new FedSegError('settings differ from the first report (only --seeds may differ)', { file: sources[n + 1] });
  });
  const seeds = [...new Set(reports.flatMap((r) => r.settings.seeds))].sort((a, b) => a - b);
  return {
    ...first,
    settings: { ...first.settings, seeds },
    comparison: reports.flatMap((r) => r.comparison),
    runs: reports.flatMap((r) => r.runs),
    crossSite: reports.flatMap((r) => r.crossSite),
    // Wall time of the longest part: the parts ran side by side.
    seconds: Math.max(...reports.map((r) => r.seconds)),
  };
}

/** Writes report.json, report.html and RESULTS-federated.md under `outDir`; returns their paths. */
export async function writeExperimentReport(outDir: string, report: ExperimentReport): Promise<string[]> {
  const files = [join(outDir, 'report.json'), join(outDir, 'report.html'), join(outDir, 'RESULTS-federated.md')];
  await writeFileAtomic(files[0], `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(files[1], renderExperimentHtml(report));
  await writeFileAtomic(files[2], renderExperimentMarkdown(report));
  return files;
}
