/**
 * The server's deployment files, checked without Docker or systemd: the Dockerfile's ENTRYPOINT, CMD and
 * HEALTHCHECK name files the build produces and real `fedseg server` flags, and its CMD, run with plain node
 * from this checkout's build, starts a server the health check passes; the systemd unit's ExecStart does
 * the same, with every credential it names loaded and its database in its state folder.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, tempDir } from '../server/helpers.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const tmp = tempDir('deploy-files');
after(() => tmp.cleanup());

/** One copied path: `COPY a b ./` gives one entry per source, each with its own destination. */
interface Copy { from?: string; source: string; dest: string }
interface Stage { name: string | undefined; workdir: string; copies: Copy[] }
interface Dockerfile { stages: Stage[]; entrypoint: string[]; cmd: string[]; healthcheck: string[] }

/** Just the instructions these checks need, from a Dockerfile without line continuations inside them. */
function parseDockerfile(text: string): Dockerfile {
  const stages: Stage[] = [];
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  let healthcheck: string[] = [];
  for (const line of text.split('\n')) {
    const from = /^FROM \S+(?: AS (\S+))?$/.exec(line);
    if (from) stages.push({ name: from[1], workdir: '/', copies: [] });
    const stage = stages.at(-1);
    const workdir = /^WORKDIR (\S+)$/.exec(line);
    if (workdir && stage) stage.workdir = posix.resolve(stage.workdir, workdir[1]);
    const copy = /^COPY (?:--from=(\S+) )?(.+)$/.exec(line);
    if (copy && stage) {
      const words = copy[2].split(/\s+/);
      const target = words.at(-1)!;
      const intoFolder = target.endsWith('/') || target === '.';
      for (const source of words.slice(0, -1)) {
        stage.copies.push({ from: copy[1], source, dest: posix.resolve(stage.workdir, target, intoFolder ? posix.basename(source) : '') });
      }
    }
    const exec = /^(ENTRYPOINT|CMD) (\[.*\])$/.exec(line);
    if (exec?.[1] === 'CMD') cmd = JSON.parse(exec[2]);
    if (exec?.[1] === 'ENTRYPOINT') entrypoint = JSON.parse(exec[2]);
    const health = /^HEALTHCHECK .*CMD (\[.*\])$/.exec(line);
    if (health) healthcheck = JSON.parse(health[1]);
  }
  return { stages, entrypoint, cmd, healthcheck };
}

/**
 * The checkout path an absolute path of the final image comes from. The build stage mirrors the checkout
 * under its WORKDIR and runs the same build (npm ci's steps), so a file copied from it is the checkout's
 * file of the same relative path after `npm run build`.
 */
function sourceInCheckout(docker: Dockerfile, imagePath: string): string {
  const final = docker.stages.at(-1)!;
  const copy = final.copies.find((c) => imagePath === c.dest || imagePath.startsWith(`${c.dest}/`));
  assert.ok(copy, `${imagePath} is not copied into the final image`);
  const rest = imagePath.slice(copy.dest.length);
  if (copy.from === undefined) return join(REPO, copy.source, rest);
  const stage = docker.stages.find((s) => s.name === copy.from);
  assert.ok(stage, `COPY --from=${copy.from}: no such stage`);
  assert.ok(copy.source.startsWith(`${stage.workdir}/`), `${copy.source} is outside the build stage's ${stage.workdir}`);
  return join(REPO, posix.relative(stage.workdir, copy.source), rest);
}

/** The flags `fedseg server start` takes, read from its usage text. */
function serverStartFlags(): Set<string> {
  const help = spawnSync(process.execPath, ['bin/fedseg.js', 'server', '--help'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  const synopsis = /fedseg server start([\s\S]*?)fedseg server add-site/.exec(help.stdout);
  assert.ok(synopsis, `no "fedseg server start" synopsis in:\n${help.stdout}`);
  return new Set(synopsis[1].match(/--[a-z-]+/g));
}

function assertRealStartFlags(args: string[], where: string): void {
  assert.deepEqual(args.slice(0, 2), ['server', 'start'], `${where} runs fedseg server start`);
  const known = serverStartFlags();
  const flags = args.filter((a) => a.startsWith('--'));
  for (const flag of flags) assert.ok(known.has(flag), `${where}: ${flag} is not a flag of fedseg server start (${[...known].join(' ')})`);
  for (const required of ['--config', '--db']) assert.ok(flags.includes(required), `${where} gives ${required}`);
}


const docker = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));

test('the Dockerfile copies only checkout files the build context holds, and its ENTRYPOINT and HEALTHCHECK run files the build produces', () => {
  for (const stage of docker.stages) {
    for (const { source } of stage.copies.filter((c) => c.from === undefined)) {
      assert.ok(existsSync(join(REPO, source)), `COPY ${source}: not in the checkout`);
      assert.ok(!ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)), `COPY ${source}: excluded by .dockerignore`);
    }
  }
  const [node, script, ...args] = [...docker.entrypoint, ...docker.cmd];
  assert.equal(node, 'node');
  const cli = sourceInCheckout(docker, script);
  assert.equal(cli, join(REPO, 'bin/fedseg.js'));
  // bin/fedseg.js runs the compiled CLI, which the final stage must hold too.
  const compiledEntry = /new URL\('\.\.\/(dist\/[^']+)'/.exec(readFileSync(cli, 'utf8'));
  assert.ok(compiledEntry, 'bin/fedseg.js names its compiled entry');
  assert.ok(existsSync(sourceInCheckout(docker, posix.join(posix.dirname(script), '..', compiledEntry[1]))), `${compiledEntry[1]} is built and copied`);
  assertRealStartFlags(args, 'the Dockerfile CMD');
  assert.equal(docker.healthcheck[0], 'node');
  assert.equal(sourceInCheckout(docker, docker.healthcheck[1]), join(REPO, 'deploy/healthcheck.js'));
  assert.match(readFileSync(join(REPO, 'Dockerfile'), 'utf8'), /^USER fedseg$/m, 'the server does not run as root');
});

test('the Dockerfile CMD, run with plain node from the build, serves TLS with the admin token from a mounted file, and the health check passes', { skip: spawnSync('openssl', ['version']).status !== 0 && 'openssl not installed' }, async () => {
  const root = join(tmp.dir, 'image');
  const port = await freePort();
  const at = (path: string) => join(root, path);
  mkdirSync(at('etc/fedseg/tls'), { recursive: true });
  mkdirSync(at('var/lib/fedseg'), { recursive: true });
  mkdirSync(at('run/secrets'), { recursive: true });
  writeFileSync(at('etc/fedseg/federation.json'), JSON.stringify({ rounds: 1, minSites: 1, model: { baseFilters: 2, depth: 2, inputShape: [16, 16, 16] } }));
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=fedseg.example.org',
    '-keyout', at('etc/fedseg/tls/server.key'), '-out', at('etc/fedseg/tls/server.pem')]);
  assert.equal(made.status, 0, made.stderr.toString());
  writeFileSync(at('run/secrets/fedseg-admin-token'), 'a-mounted-admin-token-0123456789\n', { mode: 0o600 });
  // The image's paths, moved under this test's folder; the image's code is this checkout's build.
  const [, script, ...args] = [...docker.entrypoint, ...docker.cmd].map((a) => (a.startsWith('/') ? at(a.slice(1)) : a === '8443' ? String(port) : a));
  const server = spawn(process.execPath, [sourceInCheckout(docker, script.slice(root.length)), ...args], {
    env: { ...process.env, FEDSEG_ADMIN_TOKEN: '', FEDSEG_ADMIN_TOKEN_FILE: at('run/secrets/fedseg-admin-token') }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  server.stdout.on('data', (d: Buffer) => (output += d.toString()));
  server.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    const deadline = Date.now() + 60_000;
    while (!output.includes('FedSeg server: sites connect to wss://')) {
      assert.ok(server.exitCode === null, `the server exited:\n${output}`);
      assert.ok(Date.now() < deadline, `the server did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const health = spawnSync(process.execPath, [sourceInCheckout(docker, docker.healthcheck[1])], {
      encoding: 'utf8', env: { ...process.env, FEDSEG_HEALTH_URL: `https://127.0.0.1:${port}/healthz` },
    });
    assert.equal(health.status, 0, health.stderr);
    const refused = spawnSync(process.execPath, [sourceInCheckout(docker, docker.healthcheck[1])], {
      encoding: 'utf8', env: { ...process.env, FEDSEG_HEALTH_URL: `https://127.0.0.1:${port}/api/status` },
    });
    assert.equal(refused.status, 1, 'the status API still wants the admin token');
    assert.match(refused.stderr, /answered 401/);
    assert.ok(existsSync(at('var/lib/fedseg/server.db')), 'the state goes to the volume');
  } finally {
    server.kill();
  }
});

test('the systemd unit starts real fedseg server flags as a dedicated user, with its credentials loaded, its database in its state folder, and hardening on', () => {
  const unitFile = join(REPO, 'deploy/fedseg-server.service');
  const unit = readFileSync(unitFile, 'utf8');
  const values = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
  const [execStart] = values('ExecStart');
  const [node, script, ...args] = execStart.split(/\s+/);
  assert.match(node, /^\/.*\/node$/);
  assert.equal(script, '/opt/fedseg/bin/fedseg.js', 'the checkout installed in /opt/fedseg, as docs/DEPLOY.md says');
  assertRealStartFlags(args, 'ExecStart');
  const credentials = new Set(values('LoadCredential').map((v) => v.split(':')[0]));
  for (const used of execStart.matchAll(/%d\/([\w-]+)/g)) assert.ok(credentials.has(used[1]), `ExecStart uses %d/${used[1]} but no LoadCredential=${used[1]}:...`);
  assert.ok(args.includes('--admin-token-file'), 'the admin token comes from a credential file');
  const [state] = values('StateDirectory');
  assert.ok(args[args.indexOf('--db') + 1].startsWith(`/var/lib/${state}/`), 'the database lives in the StateDirectory');
  assert.notEqual(values('User')[0] ?? 'root', 'root');
  for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes'], ['CapabilityBoundingSet', '']]) {
    assert.deepEqual(values(key), [value], `${key}=${value}`);
  }
});

test('systemd-analyze verify accepts the unit', { skip: (spawnSync('systemd-analyze', ['--version']).status !== 0 || !existsSync('/usr/bin/node')) && 'needs systemd-analyze and /usr/bin/node' }, () => {
  const verify = spawnSync('systemd-analyze', ['verify', join(REPO, 'deploy/fedseg-server.service')], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', 'no warnings');
});
