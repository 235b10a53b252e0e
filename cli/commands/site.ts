import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { BACKEND_PREFERENCES } from '../../core/tf/backend.js';
import { SiteRuntime, type ApprovalRequest, type RuntimeEvent } from '../../site/runtime.js';
import { createIsolatedTrainer } from '../../site/isolated-trainer.js';
import { createDataDirTrainer } from '../../site/trainer.js';
import type { CliCommand } from '../command.js';
import { DEFAULT_MIN_METRIC_CASES, privacyLines } from '../../site/outgoing.js';
import { choiceOption, intOption, requiredOption, secretOption } from '../options.js';

const usage = `Usage: fedseg site --server URL (--token-file FILE | --token T) --data DIR [--validation DIR]
                   [--auto-approve] [--ca PEM] [--backend ${BACKEND_PREFERENCES.join('|')}] [--thread-per-round]
                   [--micro-batch N] [--min-metric-cases N] [--json]

Runs this site headless in the federation at URL (ws://host:port/ws or wss://...). The site token
comes from --token-file FILE (its first line), --token T, the file $FEDSEG_SITE_TOKEN_FILE names, or
$FEDSEG_SITE_TOKEN; files and variables keep it out of the process list. --ca PEM trusts a private CA
for wss://. --data holds the site's BraTS cases; --validation holds held-out cases for evaluating each
global model (default: 20 % of --data).
Each round asks for approval on the terminal unless --auto-approve. While nothing happens it says what
the server waits for (more sites, other sites' approvals or updates). What leaves the site: at connect,
its training and validation case counts; if it approves a round, the model weights, the training case
count and aggregate training metrics (loss, Dice; per-epoch loss while training); after every completed
round, aggregate metrics of the new global model on the validation cases. Metrics that would describe
fewer than --min-metric-cases cases (default ${DEFAULT_MIN_METRIC_CASES}) are not sent; their messages carry only the case
count. Never images, masks, file names or header text. The approval prompt lists every field and metric key.
--thread-per-round trains and evaluates each round in a fresh worker thread, so the memory of a
full-size (128^3) training step goes back to the system between rounds instead of staying with the
wasm backend's heap; the cases are preprocessed again each round.
--micro-batch N runs the server's batch in passes of at most N samples with the same gradient
(less memory per step, a little more time).
--json prints one JSON event per line.`;

const command: CliCommand = {
  summary: 'run a site headless: connect with its token, approve rounds, train locally, send updates',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        server: { type: 'string' }, token: { type: 'string' }, 'token-file': { type: 'string' }, data: { type: 'string', multiple: true },
        validation: { type: 'string', multiple: true }, 'auto-approve': { type: 'boolean' }, ca: { type: 'string' },
        backend: { type: 'string' }, 'thread-per-round': { type: 'boolean' }, 'micro-batch': { type: 'string' }, json: { type: 'boolean' },
        'min-metric-cases': { type: 'string' },
      },
    });
    const json = values.json ?? false;
    const token = secretOption('token', { value: values.token, file: values['token-file'], env: 'FEDSEG_SITE_TOKEN' });
    const server = requiredOption(values, 'server', { metavar: 'URL' });
    if (!/^wss?:\/\//.test(server)) throw new FedSegError(`--server must be a ws:// or wss:// URL, got ${server}`, { field: 'server' });
    if (!token) throw new FedSegError('--token-file FILE, --token T or $FEDSEG_SITE_TOKEN is required', { field: 'token' });
    const trainDirs = requiredOption(values, 'data', { metavar: 'DIR' });
    const backend = choiceOption(values, 'backend', BACKEND_PREFERENCES);
    const autoApprove = values['auto-approve'] ?? false;
    if (!autoApprove && !process.stdin.isTTY) {
      throw new FedSegError('approvals need a terminal; use --auto-approve for unattended sites', { field: 'auto-approve' });
    }
    const trainerOptions = { trainDirs, validationDirs: values.validation, backend, microBatch: intOption(values, 'micro-batch', { min: 1 }) };
    const trainer = values['thread-per-round'] ? createIsolatedTrainer(trainerOptions) : createDataDirTrainer(trainerOptions);
    const minMetricCases = intOption(values, 'min-metric-cases', { min: 1, fallback: DEFAULT_MIN_METRIC_CASES });
    const site = new SiteRuntime({
      url: server, token, trainer, ca: values.ca ? readCa(values.ca) : undefined, minMetricCases,
      approve: autoApprove ? () => true : askOnTerminal,
    });
    site.on('event', (e) => {
      if (!json && e.type === 'waiting' && e.message === null) return; // the next event says what happens instead
      process.stdout.write(`${json ? JSON.stringify(e) : describe(e)}\n`);
    });
    process.once('SIGINT', () => site.stop());
    process.once('SIGTERM', () => site.stop());
    await site.start();
    const outcome = await site.done;
    return outcome === 'refused' ? 1 : 0;
  },
};

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new FedSegError(`cannot read the CA certificate (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file, field: 'ca' }, { cause: err });
  }
}

async function askOnTerminal(r: ApprovalRequest): Promise<{ approve: boolean; reason?: string }> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    process.stdout.write([
      '', `Round ${r.round} of ${r.totalRounds} (${r.strategy}): train ${r.model.arch} (base filters ${r.model.baseFilters}, depth ${r.model.depth})`,
      `  for ${r.instructions.epochs} epoch(s), lr ${r.instructions.learningRate}${r.instructions.mu > 0 ? `, FedProx mu ${r.instructions.mu}` : ''} on ${r.trainingCases} approved case(s).`,
      `  What leaves the site (metrics over fewer than ${r.minMetricCases} cases are withheld):`,
      ...r.outgoing.map((m) => `    - ${m.message}${m.numCases !== null ? ` (${m.numCases} cases)` : ''}: ${m.fields.join(', ')}${m.withheld.length ? `; withheld: ${m.withheld.join(', ')}` : ''}`),
      ...(r.privacy ? privacyLines(r.privacy, r.secureAggregation ?? undefined).map((line) => `  ${line}`) : []),
      `  The server's description: ${r.leavesSite.join('; ')}`,
      '  Never sent: images, file names, NIfTI header text.', `  Answer before ${r.approvalDeadline.toISOString()}.`, '',
    ].join('\n'));
    const answer = (await rl.question('Approve this round? [y/N] ')).trim().toLowerCase();
    return answer === 'y' || answer === 'yes' ? { approve: true } : { approve: false, reason: 'declined by the site admin' };
  } finally {
    rl.close();
  }
}

function describe(e: RuntimeEvent): string {
  switch (e.type) {
    case 'connected': return `connected to ${e.server} as ${e.site}`;
    case 'disconnected': return `disconnected (${e.reason})${e.retryInMs !== null ? `; retrying in ${(e.retryInMs / 1000).toFixed(1)} s` : ''}`;
    case 'round-announced': return `round ${e.round}/${e.totalRounds} announced (attempt ${e.attempt})`;
    case 'approval': return `round ${e.round}: ${e.approved ? 'approved' : `declined${e.reason ? ` (${e.reason})` : ''}`}`;
    case 'training-started': return `round ${e.round}: training on ${e.numCases} case(s)${e.backend ? ` with ${e.backend}` : ''}`;
    case 'training-progress': return `round ${e.round}: epoch ${e.epoch}/${e.epochs}${e.step !== undefined ? ` step ${e.step}/${e.steps}` : ' done'}` +
      `${e.loss !== undefined ? ` loss ${e.loss.toFixed(4)}` : ''}${e.etaSeconds !== undefined ? ` ETA ${Math.ceil(e.etaSeconds)} s` : ''}`;
    case 'update-sent': return `round ${e.round}: update sent (${e.numCases} cases, ${(e.bytes / 1e6).toFixed(2)} MB, norm ${e.norm.toPrecision(4)})`;
    case 'update-accepted': return `round ${e.round}: update accepted`;
    case 'update-rejected': return `round ${e.round}: update REJECTED: ${e.reason}`;
    case 'left-out': return `round ${e.round}: left out: ${e.reason}`;
    case 'round-result': return `round ${e.round} ${e.status}${e.status === 'completed' ? ` with ${e.sites.length} site(s)` : `: ${e.reason ?? ''}`}`;
    case 'global-metrics': return `round ${e.round} global model on ${e.numCases} local validation case(s): ${Object.entries(e.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`;
    case 'finished': return `federation finished after ${e.rounds} round(s)`;
    case 'refused': return `error: the server refused this site (${e.code}): ${e.reason}`;
    case 'error': return `error: ${e.message}`;
    case 'waiting': return `server: ${e.message ?? 'no longer waiting'}`;
  }
}

export default command;
