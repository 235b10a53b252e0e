/**
 * The dev bridge and the site-runtime process without a browser: the request gate (secret, allow-list, zod),
 * plain-words errors, the admin role enforced in the runtime, final-mask versions (validation, plausibility
 * warnings confirmed by name, revert), and settings that survive a restart.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startBridge, type Bridge } from '../../devbridge/bridge.js';
import { buildRenderer, REPO, syntheticSites, tempDir } from './harness.js';

const dir = tempDir();
let bridge: Bridge;
let secret = '';
let data = '';

async function call(channel: string, arg?: unknown, init: RequestInit = {}): Promise<{ ok: boolean; value?: unknown; error?: string }> {
  const response = await fetch(`${bridge.url}__fedseg/call/${channel}`, {
    method: 'POST', headers: { 'x-fedseg-bridge': secret, 'content-type': 'application/json' }, body: arg === undefined ? undefined : JSON.stringify(arg), ...init,
  });
  return response.json() as Promise<{ ok: boolean; value?: unknown; error?: string }>;
}

async function open(): Promise<void> {
  bridge = await startBridge({ dataDir: join(dir, 'state'), log: () => undefined });
  secret = /"([0-9a-f]{48})"/.exec(await (await fetch(`${bridge.url}__fedseg/shim.js`)).text())![1];
}

before(async () => {
  if (!existsSync(join(REPO, 'renderer/dist/index.html'))) await buildRenderer();
  data = (await syntheticSites(dir)).appData;
  await open();
});
after(async () => {
  await bridge?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('serves the renderer with the CSP header and the shim before the app script', async () => {
  const response = await fetch(bridge.url);
  assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'none'.*script-src 'self'/);
  const html = await response.text();
  assert.ok(html.indexOf('/__fedseg/shim.js') < html.indexOf('type="module"'));
  assert.equal((await fetch(`${bridge.url}..%2F..%2Fpackage.json`)).status, 404);
});

test('refuses calls without the per-start secret and events without it', async () => {
  const response = await fetch(`${bridge.url}__fedseg/call/getState`, { method: 'POST' });
  assert.equal(response.status, 403);
  assert.equal((await fetch(`${bridge.url}__fedseg/events?secret=wrong`)).status, 403);
});

test('unknown channels and malformed requests get one plain sentence', async () => {
  assert.match((await call('deleteEverything')).error!, /unknown request/);
  const bad = await call('setSliceMark', { caseId: '../etc', axis: 'axial', slice: -1, mark: 'ok' });
  assert.equal(bad.ok, false);
  assert.match(bad.error!, /^caseId: not a case id$/);
  const noUrl = await call('connect', { serverUrl: 'ftp://x' });
  assert.match(noUrl.error!, /serverUrl: must start with ws:\/\//);
  // E1: the token would cross the network in clear.
  const clear = await call('connect', { serverUrl: 'ws://10.1.2.3:8787/ws', token: 'some-token' });
  assert.match(clear.error!, /serverUrl: plain ws:\/\/ and http:\/\/ only reach this computer/);
});

test('only the site admin can approve rounds or connect; the role is enforced by the runtime', async () => {
  const state = (await call('getState')).value as { role: string; adminPassphraseSet: boolean };
  assert.equal(state.role, 'reviewer');
  assert.match((await call('decideRound', { round: 1, approve: true })).error!, /Only the site admin/);
  assert.match((await call('unlockAdmin', { passphrase: 'anything' })).error!, /No admin passphrase is set/);
  assert.match((await call('setAdminPassphrase', { next: 'aaaaaaaaaaaaaaaa' })).error!, /too weak: mix at least two of letters, digits/);
  assert.match((await call('setAdminPassphrase', { next: 'ab ab ab ab ab ab' })).error!, /too weak: use at least 6 different characters/);
  assert.equal((await call('setAdminPassphrase', { next: 'long enough passphrase' })).ok, true);
  assert.match((await call('setAdminPassphrase', { current: 'wrong', next: 'another passphrase' })).error!, /current admin passphrase is wrong/);
  assert.equal(((await call('lockAdmin')).value as { role: string }).role, 'reviewer');
  assert.match((await call('unlockAdmin', { passphrase: 'nope' })).error!, /Wrong admin passphrase/);
  assert.equal(((await call('unlockAdmin', { passphrase: 'long enough passphrase' })).value as { role: string }).role, 'admin');
  assert.match((await call('decideRound', { round: 7, approve: true })).error!, /not waiting for a decision/);
});

test('saving a final mask checks grid and labels, asks to confirm plausibility warnings by name, keeps versions and never touches the ground truth', async () => {
  const cases = (await call('importFolder', { path: data })).value as Array<{ id: string }>;
  const caseId = cases[0].id;
  const truthFile = join(data, caseId, `${caseId}_seg.nii.gz`);
  const truthBytes = readFileSync(truthFile);
  const save = async (dims: number[], fill: number, source: unknown, confirm: string[] = []) => {
    const header = Buffer.alloc(352);
    header.writeInt32LE(348, 0);
    header.writeInt16LE(3, 40);
    dims.forEach((d, i) => header.writeInt16LE(d, 42 + 2 * i));
    header.writeInt16LE(2, 70); // uint8
    header.writeInt16LE(8, 72);
    header.writeFloatLE(1, 76); header.writeFloatLE(1, 80); header.writeFloatLE(1, 84); header.writeFloatLE(1, 88);
    header.writeFloatLE(352, 108);
    header.write('n+1\0', 344, 'latin1');
    const voxels = Buffer.alloc(dims[0] * dims[1] * dims[2], fill);
    const body = gzipSync(Buffer.concat([header, voxels]));
    const response = await fetch(`${bridge.url}__fedseg/call/saveFinalMask`, {
      method: 'POST', body,
      headers: {
        'x-fedseg-bridge': secret, 'content-type': 'application/octet-stream', 'x-fedseg-binary-field': 'nifti',
        'x-fedseg-json': encodeURIComponent(JSON.stringify({ caseId, source, confirm })),
      },
    });
    return response.json() as Promise<{ ok: boolean; error?: string; value?: { saved: boolean; warnings?: Array<{ code: string }>; version?: { version: number; source: unknown; diceVsSource: unknown } } }>;
  };
  const versionFile = (v: number) => join(dir, 'state', 'final-masks', caseId, `v${v}.nii.gz`);
  assert.match((await save([10, 10, 10], 0, { kind: 'truth' })).error!, /10 x 10 x 10 voxels but case .* is 240 x 240 x 155/);
  assert.match((await save([240, 240, 155], 3, { kind: 'truth' })).error!, /contains label 3; only 0, 1, 2 and 4/);
  assert.match((await save([240, 240, 155], 0, { kind: 'prediction' })).error!, /has no prediction yet/);
  // An empty mask from a non-empty ground truth: a warning, nothing written until the save names it.
  const empty = await save([240, 240, 155], 0, { kind: 'truth' });
  assert.deepEqual(empty.value?.warnings?.map((w) => w.code), ['empty']);
  assert.equal(existsSync(versionFile(1)), false);
  const confirmed = await save([240, 240, 155], 0, { kind: 'truth' }, ['empty']);
  assert.equal(confirmed.value?.saved, true);
  assert.deepEqual(confirmed.value?.version?.source, { kind: 'truth' });
  assert.deepEqual(confirmed.value?.version?.diceVsSource, { et: 0, tc: 0, wt: 0 });
  // Label 2 everywhere is edema outside the brain and larger than it: two warnings, both must be named.
  const everywhere = await save([240, 240, 155], 2, { kind: 'final', version: 1 }, ['outside-brain']);
  assert.deepEqual(everywhere.value?.warnings?.map((w) => w.code).sort(), ['outside-brain', 'too-large']);
  assert.equal((await save([240, 240, 155], 2, { kind: 'final', version: 1 }, ['outside-brain', 'too-large'])).value?.saved, true);
  assert.equal(existsSync(versionFile(2)), true);
  const listed = (await call('listCases')).value as Array<{ id: string; status: string; finalMasks: { chosen: number | null; versions: unknown[] } }>;
  assert.equal(listed.find((c) => c.id === caseId)?.status, 'final');
  assert.equal(listed.find((c) => c.id === caseId)?.finalMasks.chosen, 2);
  assert.equal(((await call('chooseFinalMask', { caseId, version: 1 })).value as { finalMasks: { chosen: number } }).finalMasks.chosen, 1);
  assert.match((await call('chooseFinalMask', { caseId, version: 9 })).error!, /no final mask version 9/);
  assert.equal(((await call('chooseFinalMask', { caseId, version: null })).value as { status: string }).status, 'not-reviewed');
  assert.deepEqual(readFileSync(truthFile), truthBytes, 'the ground truth is byte-identical');
  assert.equal(existsSync(join(data, caseId, `${caseId}_final_seg.nii.gz`)), false, 'nothing is written into the hospital folder');
});

test('a case with a truncated FLAIR is flagged with that file and its reason, and is not used for training', async () => {
  const cases = (await call('listCases')).value as Array<{ id: string; dir: string }>;
  const bad = join(dir, 'bad', cases[1].id);
  cpSync(cases[1].dir, bad, { recursive: true });
  const flair = join(bad, `${cases[1].id}_flair.nii.gz`);
  writeFileSync(flair, readFileSync(flair).subarray(0, 4000));
  const listed = (await call('importFolder', { path: join(dir, 'bad') })).value as Array<{ issues: Array<{ severity: string; message: string }>; trainable: boolean }>;
  const error = listed[0].issues.find((i) => i.severity === 'error');
  assert.match(error?.message ?? '', new RegExp(`^${cases[1].id}_flair\\.nii\\.gz: `));
  assert.equal(listed[0].trainable, false);
  await call('importFolder', { path: data });
});

test('an unreachable server is reported in plain words, and the token is not kept', async () => {
  const result = await call('connect', { serverUrl: 'ws://127.0.0.1:9/ws', token: 'some-token' });
  assert.equal(result.ok, false);
  assert.match(result.error!, /server at ws:\/\/127\.0\.0\.1:9\/ws is unreachable/);
  assert.doesNotMatch(result.error!, /\n\s+at /);
  const state = (await call('getState')).value as { connection: { phase: string; error: string }; saved: { hasToken: boolean } };
  assert.equal(state.connection.phase, 'error');
  assert.equal(state.saved.hasToken, false);
});

test('settings, review marks and the data folder survive a restart; the admin role does not', async () => {
  const cases = (await call('listCases')).value as Array<{ id: string }>;
  await call('setSliceMark', { caseId: cases[1].id, axis: 'axial', slice: 40, mark: 'wrong' });
  await bridge.close();
  await open();
  const state = (await call('getState')).value as { role: string; adminPassphraseSet: boolean; dataFolder: string };
  assert.equal(state.role, 'reviewer');
  assert.equal(state.adminPassphraseSet, true);
  assert.equal(state.dataFolder, data);
  assert.deepEqual(((await call('getReview', { caseId: cases[1].id })).value as { marks: unknown }).marks, { 'axial:40': 'wrong' });
  assert.equal(((await call('listCases')).value as unknown[]).length, 3);
});

test('wrong admin passphrases back off exponentially, across a restart, and a right one clears it', async () => {
  await call('lockAdmin');
  assert.match((await call('unlockAdmin', { passphrase: 'wrong 1' })).error!, /^Wrong admin passphrase\.$/);
  assert.match((await call('unlockAdmin', { passphrase: 'wrong 2' })).error!, /^Wrong admin passphrase\.$/);
  assert.match((await call('unlockAdmin', { passphrase: 'wrong 3' })).error!, /^Wrong admin passphrase\. The next attempt is accepted in 1 s\.$/);
  // Even the right passphrase waits out the back-off.
  assert.match((await call('unlockAdmin', { passphrase: 'long enough passphrase' })).error!, /^Too many wrong admin passphrases\. Try again in 1 s\.$/);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  assert.match((await call('unlockAdmin', { passphrase: 'wrong 4' })).error!, /accepted in 2 s\.$/);
  await bridge.close();
  await open();
  await new Promise((resolve) => setTimeout(resolve, 2100));
  assert.match((await call('unlockAdmin', { passphrase: 'wrong 5' })).error!, /accepted in 4 s\.$/, 'a restart does not reset the count');
  await new Promise((resolve) => setTimeout(resolve, 4100));
  assert.equal(((await call('unlockAdmin', { passphrase: 'long enough passphrase' })).value as { role: string }).role, 'admin');
  assert.match((await call('unlockAdmin', { passphrase: 'wrong 6' })).error!, /^Wrong admin passphrase\.$/, 'the right passphrase reset the count');
});
