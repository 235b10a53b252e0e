import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { formatBaselineTable } from '../../core/report/index.js';
import { parseDemoOptions, type DemoOptions } from '../../demo/options.js';
import { runDemo } from '../../demo/run-demo.js';
import type { CliCommand } from '../command.js';
import { intOption, numberOption } from '../options.js';

const usage = `Usage: fedseg demo [--out DIR] [--sites N] [--rounds N] [--model unet|attention-unet] [--baselines] [--json]
                   [--cases N] [--held-out N] [--local-epochs N] [--downsample F] [--base-filters N] [--depth N]
                   [--lr X] [--batch N] [--seed S] [--preset seed] [--secure-aggregation] [--dp-epsilon E [--dp-clip C]]

Runs a whole federation on this machine: generates synthetic BraTS-like data for N hospitals under
DIR/data (reused on later runs), splits each site's cases into training and held-out, starts the
aggregation server and one site process per hospital on loopback, runs the rounds with FedAvg, and
prints a per-round table (sites returned, the global model's ET/TC/WT Dice on the sites' held-out
cases, round time). Writes DIR/report.json and DIR/report.html (charts per round and per site, a
prediction slice); server state and logs go under DIR/server and DIR/logs.
--baselines also trains local-only (each site alone) and centralised models on the same split and
budget and adds them to the report. --secure-aggregation runs every round under secure aggregation
(docs/PRIVACY.md): the server learns only the sum of the updates; threshold = the quorum, half the sites.

Defaults: --out ./demo-output --sites 5 --rounds 4 --model unet --cases 6 (mean per site; each hospital has its
profile's share) --held-out 2 --local-epochs 3 --downsample 4 (the model sees the 128^3 crop as 32^3 voxels of 4 mm)
--base-filters 8 --depth 3 --lr 0.001 --batch 1 --seed 2020.

--dp-epsilon E trains with client-level DP-FedAvg (docs/PRIVACY.md): each site clips its update to L2 norm
--dp-clip (default 1), the server adds Gaussian noise with the noise multiplier calibrated so that epsilon after
all rounds is at most E (delta 1e-5, every site every round), and report.json records the privacy spent. The
noise is seeded by --seed so the run is reproducible. With --secure-aggregation the sites add the noise instead
(distributed DP): each adds its share, sized so that any threshold of them carry the full noise, before masking.

--preset seed runs the original project's configuration: the full 128^3 crop (--downsample 1), U-Net filters
16..256 (depth 5) with dropout, Dice + focal loss, Adam 1e-4, batch 2, 2 rounds of 1 local epoch, --cases 3 --held-out 1;
without --model it runs the U-Net and then the Attention U-Net (DIR/unet, DIR/attention-unet, one DIR/data).
At full resolution the site processes on this one machine take turns to train and evaluate.`;

const command: CliCommand = {
  summary: 'runs a five-hospital federation on this machine and writes report.html / report.json',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' }, sites: { type: 'string' }, rounds: { type: 'string' }, model: { type: 'string' },
        baselines: { type: 'boolean' }, json: { type: 'boolean' }, cases: { type: 'string' }, 'held-out': { type: 'string' },
        'local-epochs': { type: 'string' }, downsample: { type: 'string' }, 'base-filters': { type: 'string' }, depth: { type: 'string' },
        seed: { type: 'string' }, lr: { type: 'string' }, batch: { type: 'string' }, preset: { type: 'string' },
        'secure-aggregation': { type: 'boolean' }, 'dp-epsilon': { type: 'string' }, 'dp-clip': { type: 'string' },
      },
    });
    if (positionals.length > 0) throw new FedSegError(`unexpected argument "${positionals[0]}"`);
    const options = parseDemoOptions({
      out: values.out, model: values.model, baselines: values.baselines, json: values.json,
      // Ranges are checked once, by DemoOptionsSchema; here only the syntax.
      sites: intOption(values, 'sites'), rounds: intOption(values, 'rounds'), casesPerSite: intOption(values, 'cases'),
      heldOut: intOption(values, 'held-out'), localEpochs: intOption(values, 'local-epochs'),
      downsample: intOption(values, 'downsample'), baseFilters: intOption(values, 'base-filters'),
      depth: intOption(values, 'depth'), seed: intOption(values, 'seed'), batchSize: intOption(values, 'batch'),
      learningRate: numberOption(values, 'lr'), preset: values.preset, secureAggregation: values['secure-aggregation'],
      dpEpsilon: numberOption(values, 'dp-epsilon'), dpClip: numberOption(values, 'dp-clip'),
    });
    if (values['dp-clip'] !== undefined && values['dp-epsilon'] === undefined) throw new FedSegError('--dp-clip only applies with --dp-epsilon', { field: 'dp-clip' });
    if (options.preset === 'seed' && values.model === undefined) {
      // The original project compares both models: one run each, on the same synthetic hospitals.
      for (const model of ['unet', 'attention-unet'] as const) await runOne({ ...options, model, outDir: join(options.outDir, model) });
    } else {
      await runOne(options);
    }
    return 0;
  },
};

export default command;

async function runOne(options: DemoOptions): Promise<void> {
  // Progress goes to stderr with --json so stdout stays one JSON document.
  const say = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  let printedRows = 0;
  const { report, reportJson, reportHtml } = await runDemo(options, (line) => say(`[demo] ${line}`), (_entry, table) => {
    const lines = table.split('\n');
    // Header and rule once, then each new row as its round's evaluations arrive.
    if (printedRows === 0) say(`\n${lines.slice(0, 2).join('\n')}`);
    for (const line of lines.slice(2 + printedRows)) say(line);
    printedRows = lines.length - 2;
  });
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ok: true, reportJson, reportHtml, report }, null, 2)}\n`);
  } else {
    const last = report.rounds.at(-1);
    if (report.baselines && last) say(`\n${formatBaselineTable(last.dice, report.baselines)}`);
    const first = report.rounds[0]?.dice.WT;
    const load = report.machine ? ` on ${report.machine.cpus} cores (1-min load average ${report.machine.loadAverageStart.toFixed(1)} -> ${report.machine.loadAverageEnd.toFixed(1)})` : '';
    say(`\nWT Dice round 1 -> ${last?.round ?? '-'}: ${fmt(first)} -> ${fmt(last?.dice.WT)}; ${report.totalSeconds.toFixed(0)} s in total${load}`);
    say(`report: ${reportHtml}\n        ${reportJson}`);
  }
}

function fmt(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : value.toFixed(3);
}
