import { basename, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { type CaseReport, formatCaseError, validateDataset } from '../../core/brats/index.js';
import { FedSegError } from '../../core/errors.js';
import { type CliCommand } from '../command.js';

const usage = `Usage: fedseg validate DIR [--json]

Checks a BraTS-format dataset folder case by case (case folders directly in DIR, or one level
deeper, e.g. one folder per site): all four modalities (flair, t1, t1ce, t2) present and readable,
the same dims in every file, mask values only 0, 1, 2 and 4. Every case is reported; the exit
status is 1 if any case failed. name_mapping.csv / survival_info.csv are read when present.`;

const command: CliCommand = {
  summary: 'check a BraTS dataset folder case by case (modalities, dims, mask labels)',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
    if (positionals.length !== 1) throw new FedSegError('give exactly one dataset folder: fedseg validate DIR [--json]');
    const root = positionals[0];
    const json = values.json;
    let printed = 0;
    const report = await validateDataset(root, (c) => {
      if (json) return;
      if (printed++ === 0) process.stdout.write(`${'case'.padEnd(28)} ${'result'.padEnd(6)} ${'dims'.padEnd(13)} mask\n`);
      process.stdout.write(`${caseLines(root, c)}\n`);
    });
    if (json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      for (const note of report.notes) process.stdout.write(`note: ${note}\n`);
      process.stdout.write(`${report.cases.length - report.failed} of ${report.cases.length} cases OK${report.failed ? `, ${report.failed} failed` : ''}\n`);
    }
    return report.ok ? 0 : 1;
  },
};

export default command;

function caseLines(root: string, c: CaseReport): string {
  const name = relative(root, c.dir) || c.caseId;
  const mask = c.files.mask ? basename(c.files.mask) : '-';
  const lines = [`${name.padEnd(28)} ${(c.ok ? 'OK' : 'FAILED').padEnd(6)} ${(c.dims?.join('x') ?? '-').padEnd(13)} ${mask}`];
  for (const error of c.errors) lines.push(`  error: ${formatCaseError(c.caseId, error)}`);
  for (const note of c.notes) lines.push(`  note:  ${note}`);
  return lines.join('\n');
}
