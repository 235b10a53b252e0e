import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { computeCaseMetrics, readLabelVolume, REGIONS, type CaseMetrics } from '../../core/metrics/index.js';
import { printResult, type CliCommand } from '../command.js';

const usage = `Usage: fedseg metrics --pred FILE --truth FILE [--json]

Evaluates a predicted BraTS mask (labels 0/1/2/4) against the ground truth on their shared grid:
per region ET = {4}, TC = {1, 4}, WT = {1, 2, 4}: Dice, HD95 (mm, from the voxel spacing),
sensitivity, specificity, and tumour volume (mL) in prediction and truth.
Both masks empty: Dice 1, HD95 0; exactly one empty: Dice 0, HD95 373.13.`;

const command: CliCommand = {
  summary: 'Dice, HD95, sensitivity, specificity and volumes per tumour region (ET/TC/WT)',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: { pred: { type: 'string' }, truth: { type: 'string' }, json: { type: 'boolean', default: false } },
      strict: true,
    });
    if (!values.pred || !values.truth) throw new FedSegError('both --pred FILE and --truth FILE are required');
    const [pred, truth] = await Promise.all([readLabelVolume(values.pred), readLabelVolume(values.truth)]);
    const metrics = computeCaseMetrics(pred, truth);
    printResult(values.json, { ok: true, pred: values.pred, truth: values.truth, spacingMm: truth.spacing, regions: metrics }, () => formatTable(metrics));
    return 0;
  },
};

export default command;

function formatTable(metrics: CaseMetrics): string {
  const header = ['region', 'Dice', 'HD95 mm', 'sensitivity', 'specificity', 'pred mL', 'truth mL'];
  const rows = REGIONS.map((r) => {
    const m = metrics[r];
    return [r, m.dice.toFixed(4), m.hd95.toFixed(2), m.sensitivity.toFixed(4), m.specificity.toFixed(4), m.predVolumeMl.toFixed(2), m.truthVolumeMl.toFixed(2)];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  return [header, ...rows].map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}
