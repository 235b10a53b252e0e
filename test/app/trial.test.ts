/**
 * `npm run app:trial` as DESKTOP.md describes it: one command starts a server, a headless second site and the
 * dev bridge, and prints what a person needs. The test then does what the printout says through the bridge's
 * API: unlock with the printed passphrase, see Connect refused before a folder is imported, import the printed
 * folder, connect with the printed address and token, see what the server waits for, approve round 1, and
 * watch it complete on the operator's status API.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { nodeArgs } from '../../core/runtime/own-module.js';
import type { AppState } from '../../preload/api.js';
import { buildRenderer, REPO, tempDir } from './harness.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

async function until<T>(find: () => Promise<T | null | undefined | false> | T | null | undefined | false, what: string, ms = 180_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await find();
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('npm run app:trial prints the URL, passphrase, folder, server and token, and they work as printed', { timeout: 400_000 }, async () => {
  if (!existsSync(join(REPO, 'renderer/dist/index.html'))) await buildRenderer();
  const child = spawn(process.execPath, nodeArgs(new URL('../../scripts/app-trial.js', import.meta.url), ['--dir', join(dir, 'trial'), '--port', '0', '--server-port', '0', '--rounds', '1', '--skip-build']), {
    cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await until(() => out.includes('Ctrl-C stops'), `the trial's instructions; output so far:\n${out}`);
    const field = (re: RegExp) => {
      const m = re.exec(out);
      assert.ok(m, `${re} in:\n${out}`);
      return m[1];
    };
    const url = field(/Open in a browser:\s+(http:\/\/127\.0\.0\.1:\d+\/)/);
    const passphrase = field(/Admin passphrase:\s+(\S+)/);
    const folder = field(/1\. Cases: import\s+(\S+)/);
    const serverUrl = field(/server address (ws:\/\/\S+)/);
    const token = field(/site token (\S+)/);
    const statusUrl = field(/Operator status page: (http:\/\/\S+)/);
    assert.match(out, /Connect is refused until a folder/);

    const page = await fetch(url);
    assert.equal(page.status, 200);
    const secret = /"([0-9a-f]{48})"/.exec(await (await fetch(`${url}__fedseg/shim.js`)).text())![1];
    const call = async <T>(channel: string, arg?: unknown): Promise<{ ok: boolean; value?: T; error?: string }> => {
      const res = await fetch(`${url}__fedseg/call/${channel}`, {
        method: 'POST', headers: { 'x-fedseg-bridge': secret, 'content-type': 'application/json' }, body: arg === undefined ? undefined : JSON.stringify(arg),
      });
      return res.json() as Promise<{ ok: boolean; value?: T; error?: string }>;
    };

    assert.equal((await call<AppState>('unlockAdmin', { passphrase })).value?.role, 'admin');
    const early = await call('connect', { serverUrl, token });
    assert.equal(early.ok, false);
    assert.match(early.error!, /Import a BraTS folder/);
    const imported = await call<{ trainable: boolean }[]>('importFolder', { path: folder });
    assert.ok(imported.ok && imported.value!.some((c) => c.trainable), imported.error);
    await until(() => out.includes('[server] waiting for 1 more site (1 of minSites 2 connected; not connected: app-site)'), 'the server saying it waits for the app');

    const connected = await call<AppState>('connect', { serverUrl, token });
    assert.equal(connected.value?.connection.phase, 'connected', connected.error);
    // The round's first sentence names both sites; the next, once the headless site approved, this one alone.
    const onlyThisSite = /^The server is waiting for approvals of round 1: app-site \(deadline \d\d:\d\d:\d\d .+\)\.$/;
    const waiting = await until(async () => {
      const s = (await call<AppState>('getState')).value!;
      return s.pendingRound?.round === 1 && onlyThisSite.test(s.connection.waiting ?? '') ? s.connection.waiting : null;
    }, 'round 1 waiting for this site\'s approval, and the app saying so');
    assert.match(waiting, onlyThisSite);
    assert.equal((await call('decideRound', { round: 1, approve: true })).ok, true);

    const admin = new URL(statusUrl).searchParams.get('token')!;
    const status = await until(async () => {
      const s = await (await fetch(`${new URL(statusUrl).origin}/api/status`, { headers: { authorization: `Bearer ${admin}` } })).json() as { completedRounds: number; state: string };
      return s.completedRounds === 1 ? s : null;
    }, `round 1 completing; output so far:\n${out}`);
    assert.equal(status.completedRounds, 1);
    assert.match(out, /\[server\] round 1 completed with app-site, headless-site/);
  } finally {
    child.kill('SIGINT');
    assert.equal(await exited, 0, `the trial stops cleanly on Ctrl-C; output:\n${out}`);
  }
});
