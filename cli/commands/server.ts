import { accessSync, constants, existsSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { loadFederationConfig } from '../../server/config.js';
import { listSites, registerSite, removeSite, setSiteCases, startServer } from '../../server/index.js';
import { printResult, type CliCommand } from '../command.js';
import { intOption, requiredOption, secretOption } from '../options.js';

const usage = `Usage:
  fedseg server start --config FILE --db FILE [--host 127.0.0.1] [--port 8787] [--cert PEM --key PEM]
                      [--insecure] [--admin-token-file FILE] [--checkpoints DIR] [--exit-when-done] [--json]
  fedseg server add-site NAME --db FILE [--cases N] [--token-file FILE] [--json]
                      registers a site; prints its token ONCE, or writes it to a new FILE (mode 600)
  fedseg server set-cases NAME --db FILE --cases N [--json]    registers a site's training case count
  fedseg server remove-site NAME --db FILE [--json]  revokes a site's token
  fedseg server list-sites --db FILE [--json]

start runs the aggregation server: site WebSocket at ws(s)://HOST:PORT/ws, operator status page at
http(s)://HOST:PORT/ (open /?token=ADMIN_TOKEN once in a browser) and JSON under /api/ (status, rounds,
sites, audit, rounds/R/model), all behind the admin token (Authorization: Bearer); /healthz answers
{"ok":true} without one, for health checks. The admin token is
the first line of --admin-token-file, else of the file $FEDSEG_ADMIN_TOKEN_FILE names (a mounted
secret), else $FEDSEG_ADMIN_TOKEN, else the stored one, else a new one
printed once; never a command-line argument (visible to every user in ps). It needs at least 20
characters, 8 of them different; only a salted scrypt hash of it is stored.
While no round can start, the log says what the server waits for.
A non-loopback --host needs --cert/--key (TLS) or --insecure.
--cases N is the most training cases the site's updates may claim: its FedAvg weight, which the site
cannot raise. A site without one weighs at most the median case count of each round's updates.
"secureAggregation": {"threshold": T} in the config has the server learn only the sum of the updates
(docs/PRIVACY.md); it excludes the median and trimmed-mean strategies and "clipping". "privacy": {"clip": C,
"noiseMultiplier": S, "budget": {...}, "mode": "central"} runs DP-FedAvg with the server adding the noise; with
secureAggregation, "mode": "distributed" has each site add its share before masking.
The config file is JSON: {"rounds": 3, "minSites": 3, "localEpochs": 1, "strategy": {"name": "fedavg"},
"model": {"baseFilters": 8, "depth": 3, "inputShape": [32,32,32]}, "approvalDeadlineS": 60,
"trainingDeadlineS": 600, "seed": 1, ...}.`;

const command: CliCommand = {
  summary: 'run the aggregation server and manage sites (add-site, set-cases, remove-site, list-sites)',
  usage,
  async run(args) {
    const { values, positionals } = parseServerArgs(args);
    const json = values.json ?? false;
    const [sub, name] = positionals;
    const db = requiredOption(values, 'db', { metavar: 'FILE' });
    switch (sub) {
      case 'add-site': {
        if (!name) throw new FedSegError('add-site needs a site NAME', { field: 'NAME' });
        const cases = intOption(values, 'cases', { min: 1, max: 1_000_000 });
        const tokenFile = values['token-file'];
        if (tokenFile !== undefined) {
          // Fail before registering, so a bad path does not leave a site whose token nobody has.
          if (existsSync(tokenFile)) throw new FedSegError('the token file already exists; choose a new file (tokens are never overwritten)', { file: tokenFile, field: 'token-file' });
          if (!existsSync(dirname(resolve(tokenFile)))) throw new FedSegError('the token file\'s folder does not exist', { file: tokenFile, field: 'token-file' });
        }
        const { token } = registerSite(db, name, { cases });
        if (tokenFile !== undefined) {
          writeFileSync(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
          printResult(json, { ok: true, site: name, tokenFile }, () =>
            `Registered site "${name}". Its token is in ${tokenFile} (readable only by you); hand it to the site's admin, then delete it.`);
          return 0;
        }
        printResult(json, { ok: true, site: name, token }, () =>
          `Registered site "${name}". Its token (shown only now; give it to the site's admin):\n${token}`);
        return 0;
      }
      case 'set-cases': {
        if (!name) throw new FedSegError('set-cases needs a site NAME', { field: 'NAME' });
        const cases = intOption(values, 'cases', { min: 1, max: 1_000_000 });
        if (cases === undefined) throw new FedSegError('set-cases needs --cases N', { field: 'cases' });
        setSiteCases(db, name, cases);
        printResult(json, { ok: true, site: name, registeredCases: cases }, () => `Site "${name}" may now claim at most ${cases} training cases.`);
        return 0;
      }
      case 'remove-site': {
        if (!name) throw new FedSegError('remove-site needs a site NAME', { field: 'NAME' });
        removeSite(db, name);
        printResult(json, { ok: true, site: name, removed: true }, () => `Removed site "${name}"; its token no longer works.`);
        return 0;
      }
      case 'list-sites': {
        const sites = listSites(db);
        printResult(json, { ok: true, sites }, () => sites.length === 0 ? 'No sites registered.'
          : sites.map((s) => `${s.name.padEnd(24)} ${s.removed_at ? `removed ${s.removed_at}` : 'active'}  last seen ${s.last_seen_at ?? 'never'}  cases ${s.declared_train ?? '?'} declared, ${s.registered_cases ?? 'none'} registered`).join('\n'));
        return 0;
      }
      case 'start':
        return start(values, db, json);
      default:
        throw new FedSegError(`unknown server subcommand "${sub ?? ''}" (start, add-site, set-cases, remove-site, list-sites)`, { field: 'subcommand' });
    }
  },
};

function parseServerArgs(args: string[]) {
  return parseArgs({
    args, allowPositionals: true,
    options: {
      config: { type: 'string' }, db: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
      cert: { type: 'string' }, key: { type: 'string' }, insecure: { type: 'boolean' }, 'admin-token': { type: 'string' }, 'admin-token-file': { type: 'string' },
      'token-file': { type: 'string' }, checkpoints: { type: 'string' }, cases: { type: 'string' }, 'exit-when-done': { type: 'boolean' }, json: { type: 'boolean' },
    },
  });
}

async function start(values: ReturnType<typeof parseServerArgs>['values'], db: string, json: boolean): Promise<number> {
  if (values['admin-token'] !== undefined) {
    throw new FedSegError('--admin-token on the command line is visible to every user (ps); use --admin-token-file FILE or $FEDSEG_ADMIN_TOKEN', { field: 'admin-token' });
  }
  if (values.config === undefined) throw new FedSegError('start needs --config FILE', { field: 'config' });
  if (Boolean(values.cert) !== Boolean(values.key)) throw new FedSegError('TLS needs both --cert and --key', { field: 'cert' });
  // Checked before the server creates its database, so a wrong path is a one-line error naming the file.
  for (const field of ['cert', 'key'] as const) {
    const file = values[field];
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw new FedSegError(`cannot read the TLS ${field === 'cert' ? 'certificate' : 'private key'} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file, field }, { cause: err });
    }
  }
  const port = intOption(values, 'port', { min: 0, max: 65535, fallback: 8787 });
  const config = loadFederationConfig(values.config);
  const emit = (event: Record<string, unknown>, text: string) => process.stdout.write(json ? `${JSON.stringify(event)}\n` : `${text}\n`);
  const server = await startServer({
    config, dbFile: db, checkpointDir: values.checkpoints,
    host: values.host ?? '127.0.0.1', port,
    tls: values.cert && values.key ? { certFile: values.cert, keyFile: values.key } : undefined,
    insecure: values.insecure === true,
    // Never from argv (refused above): the file's first line, else the environment.
    adminToken: secretOption('admin-token', { file: values['admin-token-file'], env: 'FEDSEG_ADMIN_TOKEN' }),
    log: (line) => emit({ event: 'log', message: line }, `[server] ${line}`),
  });
  emit({ event: 'listening', wsUrl: server.wsUrl, httpUrl: server.httpUrl, port: server.port, adminToken: server.generatedAdminToken },
    `FedSeg server: sites connect to ${server.wsUrl}; operator view ${server.httpUrl}/` +
    (server.generatedAdminToken ? `\nAdmin token (shown only now): ${server.generatedAdminToken}` : ''));
  const fed = server.federation;
  fed.on('round-completed', (round, sites) => emit({ event: 'round-completed', round, sites }, `[server] round ${round} completed with ${sites.join(', ')}`));
  fed.on('round-abandoned', (round, attempt, reason) => emit({ event: 'round-abandoned', round, attempt, reason }, `[server] round ${round} abandoned: ${reason}`));
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const state = await fed.done;
  emit({ event: 'done', state, rounds: fed.completedRounds }, `[server] federation ${state} after ${fed.completedRounds} round(s)`);
  if (values['exit-when-done'] === true || state === 'failed') {
    await server.close();
    return state === 'finished' ? 0 : 1;
  }
  await new Promise<never>(() => {}); // keep serving the operator API until interrupted
  return 0;
}

export default command;
