import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { discoverCase } from '../../core/brats/index.js';
import { FedSegError } from '../../core/errors.js';
import {
  caseVolumesFromFiles, passesTumourFilter, preprocessCase, preprocessConfig, writePreprocessedCase,
} from '../../core/preprocess/index.js';
import { printResult, type CliCommand } from '../command.js';

const usage = `Usage: fedseg preprocess CASE_DIR --out DIR [--scaling volume|per-slice] [--channels LIST] [--config FILE] [--json]

Preprocesses one BraTS case as the original project did (SPEC section 3): channels FLAIR, T1ce,
T2 each min-max scaled to [0, 1], cropped to [56:184, 56:184, 13:141]. Writes DIR/image.nii.gz
(float32, dims 128,128,128,3, channel last) and, when the case has a mask, DIR/mask.nii.gz
(uint8, classes 0..3 with label 4 -> 3), both with the source affine moved to the crop origin.
Nothing is left half-written on error.
  --scaling MODE    volume (default: whole volume) or per-slice (each axial slice on its own)
  --channels LIST   comma-separated modalities in order (default flair,t1ce,t2; add t1 to use it)
  --config FILE     JSON preprocessing config { channels, scaling, crop: { i, j, k }, minTumourFraction }`;

const command: CliCommand = {
  summary: 'writes the preprocessed 128^3 crop of a case (image.nii.gz + mask.nii.gz)',
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
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (positionals.length !== 1) throw new FedSegError('expected exactly one CASE_DIR');
    if (!values.out) throw new FedSegError('--out DIR is required');
    const caseDir = positionals[0];
    const fromFile = values.config ? await readConfigFile(values.config) : {};
    const config = preprocessConfig({
      ...fromFile,
      ...(values.scaling ? { scaling: values.scaling } : {}),
      ...(values.channels ? { channels: values.channels.split(',').map((c) => c.trim()) } : {}),
    }, values.config);
    await requireFolder(caseDir);
    const files = await discoverCase(caseDir);
    const item = await preprocessCase(caseVolumesFromFiles(files, config), config);
    const written = await writePreprocessedCase(item, values.out);
    const result = {
      ok: true,
      caseId: item.caseId,
      out: values.out,
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
