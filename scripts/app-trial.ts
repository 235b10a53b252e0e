/**
 * `npm run app:trial [-- --dir DIR --port N --server-port N --rounds N --skip-build]`: a local trial of the
 * desktop app in a browser. Starts an aggregation server on loopback (tiny model, minSites 2), a second
 * site headless (`fedseg site --auto-approve`) and the development bridge over the app's real site runtime,
 * on synthetic BraTS data, then prints the address, the admin passphrase, the folder to import and the
 * server address and token to connect with. Ctrl-C stops everything. Each start is a fresh federation;
 * the synthetic data under DIR/data is kept between starts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { intOption } from '../cli/options.js';
import { errorMessage } from '../core/errors.js';
import { nodeArgs } from '../core/runtime/own-module.js';
import { writeSyntheticDataset } from '../core/synth/index.js';
import { startBridge } from '../devbridge/bridge.js';
import { hashPassphrase } from '../main/service/admin.js';
import { SiteStore } from '../main/service/site-store.js';
import { parseFederationConfig } from '../server/config.js';
import { registerSite, startServer } from '../server/index.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' }, port: { type: 'string' }, 'server-port': { type: 'string' }, rounds: { type: 'string' },
      'skip-build': { type: 'boolean' },
    },
  });
  const dir = resolve(values.dir ?? 'app-trial');
  const bridgePort = intOption(values, 'port', { min: 0, max: 65535, fallback: 5180 });
  const serverPort = intOption(values, 'server-port', { min: 0, max: 65535, fallback: 8787 });
  const rounds = intOption(values, 'rounds', { min: 1, max: 100, fallback: 3 });
  const say = (line: string) => process.stdout.write(`${line}\n`);

  // 1. Synthetic data: three cases for the app's site (two train, one held out), two for the headless site.
  const appData = join(dir, 'data/app/site-1');
  const otherData = join(dir, 'data/headless/site-1');
  if (!existsSync(appData) || !existsSync(otherData)) {
    say(`writing synthetic BraTS cases under ${join(dir, 'data')} ...`);
    await writeSyntheticDataset({ out: join(dir, 'data/app'), sites: 1, casesPerSite: 3, seed: 11 });
    await writeSyntheticDataset({ out: join(dir, 'data/headless'), sites: 1, casesPerSite: 2, seed: 12 });
  }
  if (!values['skip-build'] || !existsSync(join(REPO, 'renderer/dist/index.html'))) {
    say('building the renderer (vite) ...');
    const { build } = await import('vite');
    await build({ configFile: join(REPO, 'vite.config.ts'), root: join(REPO, 'renderer'), logLevel: 'error' });
  }

  // 2. A fresh server: a tiny model so each round trains in seconds on a laptop.
  const serverDir = join(dir, 'server');
  rmSync(serverDir, { recursive: true, force: true });
  const dbFile = join(serverDir, 'fedseg.db');
  // Each site's case cap (`add-site --cases`) is the number of cases in its folder: its training cases are
  // at most that, and an update claiming more would be rejected (docs/SERVER-SECURITY.md).
  const appToken = registerSite(dbFile, 'app-site', { cases: 3 }).token;
  const headlessToken = registerSite(dbFile, 'headless-site', { cases: 2 }).token;
  const adminToken = randomBytes(24).toString('hex'); // 48 hex digits: passes the server's admin-token strength check
  const server = await startServer({
    config: parseFederationConfig({
      model: { baseFilters: 2, depth: 2, inputShape: [16, 16, 16] }, rounds, minSites: 2, localEpochs: 1, batchSize: 1,
      approvalDeadlineS: 600, trainingDeadlineS: 600, evaluationDeadlineS: 120, retryDelayS: 2,
    }, 'app-trial federation config'),
    dbFile, port: serverPort, adminToken, log: (line) => say(`[server] ${line}`),
  });

  server.federation.on('round-completed', (round, sites) => say(`[server] round ${round} completed with ${sites.join(', ')}`));
  void server.federation.done.then((state) => say(`[server] federation ${state} after ${server.federation.completedRounds} round(s); Ctrl-C to stop`));

  // 3. The second hospital, headless, exactly as `fedseg site` runs at a real site.
  const headless = spawn(process.execPath, nodeArgs(new URL('../cli/entry.js', import.meta.url), ['site', '--server', server.wsUrl, '--data', otherData, '--auto-approve']), {
    cwd: REPO, env: { ...process.env, FEDSEG_SITE_TOKEN: headlessToken }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = (chunk: Buffer) => chunk.toString().split('\n').filter(Boolean).forEach((l) => say(`[headless-site] ${l}`));
  headless.stdout.on('data', prefix);
  headless.stderr.on('data', prefix);

  // 4. The app's site runtime behind the dev bridge, with a known admin passphrase.
  const appState = join(dir, 'app-state');
  rmSync(appState, { recursive: true, force: true });
  mkdirSync(appState, { recursive: true });
  const passphrase = `trial-${randomBytes(4).toString('hex')}`;
  new SiteStore(appState).saveSettings({ adminPassphrase: hashPassphrase(passphrase), serverUrl: server.wsUrl });
  const bridge = await startBridge({ dataDir: appState, port: bridgePort, log: (line) => say(`[app] ${line}`) });

  say([
    '',
    'FedSeg app trial is running.',
    `  Open in a browser:   ${bridge.url}`,
    `  Admin passphrase:    ${passphrase}   (top right, "Unlock admin")`,
    `  1. Cases: import     ${appData}`,
    '     (Connect is refused until a folder with at least one case with a mask is imported.)',
    `  2. Federation:       server address ${server.wsUrl}`,
    `                       site token ${appToken}`,
    '  3. Round approval:   approve each round; the headless site approves by itself.',
    `  Operator status page: ${server.httpUrl}/?token=${adminToken}`,
    '  Ctrl-C stops the server, the headless site and the bridge.',
    '',
  ].join('\n'));

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    headless.kill('SIGTERM');
    void Promise.allSettled([bridge.close(), server.close()]).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`app trial failed: ${errorMessage(err)}\n`);
  process.exit(1);
});
