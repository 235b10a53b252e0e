import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { discoverCase, type BratsCaseFiles } from '../../core/brats/index.js';
import { FedSegError } from '../../core/errors.js';
import {
  caseVolumesFromFiles, type DatasetPassStats, openPreprocessedDataset, passesTumourFilter, type PreprocessConfig, preprocessCase,
  preprocessConfig, writePreprocessedCase,
} from '../../core/preprocess/index.js';
import { printResult, type CliCommand } from '../command.js';
import { requiredOption } from '../options.js';

const usage = `Usage: fedseg preprocess CASE_DIR --out DIR [--scaling volume|per-slice] [--channels LIST] [--config FILE] [--json]
       fedseg preprocess DATASET_DIR --out DIR [--all] [...]

Preprocesses one BraTS case as the original project did (SPEC section 3): channels FLAIR, T1ce,
T2 each min-max scaled to [0, 1], cropped to [56:184, 56:184, 13:141]. Writes DIR/image.nii.gz
(float32, dims 128,128,128,3, channel last) and, when the case has a mask, DIR/mask.nii.gz
(uint8, classes 0..3 with label 4 -> 3), both with the source affine moved to the crop origin.
Nothing is left half-written on error.
Given a dataset folder (case folders below it, e.g. one per site), every case is written to
DIR/<case id>/ one at a time, keeping only cases whose tumour fills more than 1 % of the crop
(the original training filter; --all keeps every case); dropped and failed cases are reported.
  --scaling MODE    volume (default: whole volume) or per-slice (each axial slice on its own)
  --channels LIST   comma-separated modalities in order (default flair,t1ce,t2; add t1 to use it)
  --config FILE     JSON preprocessing config { channels, scaling, crop: { i, j, k }, minTumourFraction }
  --all             dataset mode: no tumour filter, and cases without a mask are written too`;

const command: CliCommand = {
  summary: 'writes the preprocessed 128^3 crop of a case or a whole dataset (image.nii.gz + mask.nii.gz)',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        scaling: { type: 'string' },
        channels: { type: 'string' },
        config: { type: 'string' },
        all: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (positionals.length !== 1) throw new FedSegError('expected exactly one CASE_DIR');
    const out = requiredOption(values, 'out', { metavar: 'DIR' });
    const caseDir = positionals[0];
    const fromFile = values.config ? await readConfigFile(values.config) : {};
    const config = preprocessConfig({
      ...fromFile,
      ...(values.scaling ? { scaling: values.scaling } : {}),
      ...(values.channels ? { channels: values.channels.split(',').map((c) => c.trim()) } : {}),
    }, values.config);
    await requireFolder(caseDir);
    const files = await discoverCase(caseDir);
    if (isNotACase(files)) return preprocessDataset(caseDir, out, config, values.all, values.json);
    const item = await preprocessCase(caseVolumesFromFiles(files, config), config);
    const written = await writePreprocessedCase(item, out);
    const result = {
      ok: true,
      caseId: item.caseId,
      out,
      image: written.image,
      mask: written.mask,
      imageDims: item.image.shape,
      channels: config.channels,
      scaling: config.scaling,
      crop: config.crop,
      affine: item.affine,
      tumourFraction: item.tumourFraction ?? null,
      passesTumourFilter: passesTumourFilter(item, config),
      minTumourFraction: config.minTumourFraction,
    };
    printResult(values.json, result, () => [
      `${item.caseId}: wrote ${written.image}${written.mask ? ` and ${written.mask}` : ' (no mask in the case)'}`,
      `  dims ${item.image.shape.join('x')} (${config.channels.join(', ')}; ${config.scaling} scaling)`,
      item.tumourFraction === undefined
        ? '  no mask: tumour filter not applicable'
        : `  tumour ${(100 * item.tumourFraction).toFixed(2)} % of the crop: ${result.passesTumourFilter ? 'kept' : 'dropped'} by the ${(100 * config.minTumourFraction).toFixed(2)} % training filter`,
    ].join('\n'));
    return 0;
  },
};

export default command;

/** Dataset mode: stream every case through preprocessing and the training filter, one at a time. */
async function preprocessDataset(dir: string, out: string, config: PreprocessConfig, all: boolean, json: boolean): Promise<number> {
  const dataset = await openPreprocessedDataset(dir, config, { tumourFilter: !all, requireMask: !all });
  const written: { caseId: string; dir: string; tumourFraction: number | null }[] = [];
  for await (const item of dataset) {
    const caseOut = join(out, item.caseId);
    await writePreprocessedCase(item, caseOut);
    written.push({ caseId: item.caseId, dir: caseOut, tumourFraction: item.tumourFraction ?? null });
    if (!json) process.stderr.write(`  ${item.caseId}\n`);
  }
  const { stats } = dataset;
  const ok = stats.failed.length === 0;
  printResult(json, { ok, out, total: stats.total, written, ...pick(stats), minTumourFraction: config.minTumourFraction }, () => [
    `wrote ${written.length} of ${stats.total} cases to ${out}`,
    `  dropped by the ${(100 * config.minTumourFraction).toFixed(2)} % tumour filter: ${stats.droppedByFilter.length}`
      + stats.droppedByFilter.map((d) => `\n    ${d.caseId} (${(100 * d.tumourFraction).toFixed(2)} %)`).join(''),
    ...(stats.withoutMask.length > 0 ? [`  without a mask${all ? '' : ' (skipped)'}: ${stats.withoutMask.join(', ')}`] : []),
    ...stats.failed.map((f) => `  FAILED ${f.error}`),
  ].join('\n'));
  return ok ? 0 : 1;
}

function pick(stats: DatasetPassStats) {
  return { droppedByFilter: stats.droppedByFilter, withoutMask: stats.withoutMask, failed: stats.failed };
}

/** A folder with no NIfTI files of its own: a dataset (or site) folder rather than a case. */
function isNotACase(files: BratsCaseFiles): boolean {
  return Object.keys(files.modalities).length === 0 && !files.mask && !files.finalMask && files.extraFiles.length === 0 && files.problems.length === 0;
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FedSegError(`cannot read config (${(err as Error).message})`, { file: path }, { cause: err });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new FedSegError(`config is not a JSON object (${(err as Error).message})`, { file: path }, { cause: err });
  }
}

async function requireFolder(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => null);
  if (!info) throw new FedSegError('case folder does not exist', { file: dir });
  if (!info.isDirectory()) throw new FedSegError('is a file, not a case folder', { file: dir });
}
