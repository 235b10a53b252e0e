import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { type NiftiImage, readNifti, valueStats } from '../../core/nifti/index.js';
import { printResult, type CliCommand } from '../command.js';

const usage = `Usage: fedseg inspect FILE [--json]

Reads a NIfTI-1 or NIfTI-2 file (.nii or .nii.gz) and prints its dims, voxel sizes, datatype,
byte order, scaling (scl_slope / scl_inter), voxel-to-world affine (sform if set, else qform, else
from pixdim, as nibabel) and min / max / mean of the scaled values. Free-text header fields
(descrip, aux_file, ...) may identify a patient: only whether they are set is shown.`;

const command: CliCommand = {
  summary: 'dims, voxel sizes, datatype, affine and value statistics of a NIfTI file',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
    if (positionals.length !== 1) throw new FedSegError('give exactly one NIfTI file: fedseg inspect FILE [--json]');
    const summary = await inspectFile(positionals[0]);
    printResult(values.json, { ok: true, ...summary }, () => formatSummary(summary));
    return 0;
  },
};

export default command;

/** What `fedseg inspect --json` prints (besides `ok`). */
export async function inspectFile(path: string) {
  return summarise(await readNifti(path));
}

function summarise(image: NiftiImage) {
  const { header } = image;
  const stats = valueStats(image);
  return {
    file: image.file,
    format: `NIfTI-${header.version}`,
    compressed: image.compressed,
    endianness: header.littleEndian ? 'little' : 'big',
    dims: header.dims,
    pixdim: header.pixdim,
    units: header.units,
    datatype: { code: header.datatype.code, name: header.datatype.name },
    scaling: header.scaling,
    affine: header.affine,
    affineSource: header.affineSource,
    sformCode: header.sformCode,
    qformCode: header.qformCode,
    stats: { min: stats.min, max: stats.max, mean: stats.mean, nonFinite: stats.nonFinite, voxels: stats.count },
    headerTextFieldsSet: Object.entries(image.text).filter(([, value]) => value !== '').map(([name]) => name),
    hasExtensions: header.hasExtensions,
  };
}

function formatSummary(s: Awaited<ReturnType<typeof inspectFile>>): string {
  const number = (v: number) => String(Number(v.toPrecision(6)));
  const lines = [
    `file        ${s.file}`,
    `format      ${s.format}${s.compressed ? ', gzip' : ''}, ${s.endianness}-endian`,
    `dims        ${s.dims.join(' x ')}`,
    `pixdim      ${s.pixdim.map(number).join(' x ')} (${s.units.spatial}${s.units.temporal === 'unknown' ? '' : `, ${s.units.temporal}`})`,
    `datatype    ${s.datatype.name} (code ${s.datatype.code})`,
    `scaling     ${s.scaling ? `value * ${number(s.scaling.slope)} ${s.scaling.inter < 0 ? '-' : '+'} ${number(Math.abs(s.scaling.inter))}` : 'none'}`,
    `affine      from ${s.affineSource} (sform_code ${s.sformCode}, qform_code ${s.qformCode})`,
    ...s.affine.map((row) => `            ${row.map((v) => number(v).padStart(12)).join(' ')}`),
    `values      min ${number(s.stats.min)}  max ${number(s.stats.max)}  mean ${number(s.stats.mean)}${s.stats.nonFinite ? `  (${s.stats.nonFinite} NaN/inf left out)` : ''}`,
  ];
  if (s.headerTextFieldsSet.length > 0) lines.push(`header text ${s.headerTextFieldsSet.join(', ')} set (not shown; FedSeg never copies them)`);
  if (s.hasExtensions) lines.push('extensions  present (not read)');
  return lines.join('\n');
}
