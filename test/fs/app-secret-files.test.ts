/** The app's settings and its site token go through the one atomic-write helper: owner-only, whole, no temp left. */
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { z } from 'zod';
import { plainCodec, TokenStore } from '../../main/host/token-store.js';
import { readJson, writeJsonAtomic } from '../../main/service/json-store.js';
import { tempDir } from '../server/helpers.js';

const tmp = tempDir('app-secret-files');
after(() => tmp.cleanup());

test('settings JSON and the site token replace an older, world-readable file with an owner-only one', () => {
  const settings = join(tmp.dir, 'state', 'settings.json');
  const token = join(tmp.dir, 'state', 'site.token');
  writeJsonAtomic(settings, { serverUrl: 'wss://old' });
  writeFileSync(token, 'old-token');
  for (const file of [settings, token]) chmodSync(file, 0o644);

  writeJsonAtomic(settings, { serverUrl: 'wss://fedseg.example.org:8443/ws' });
  const store = new TokenStore(token, plainCodec);
  store.save('new-token');

  assert.deepEqual(readJson(settings, z.object({ serverUrl: z.string() }), { serverUrl: '' }), { serverUrl: 'wss://fedseg.example.org:8443/ws' });
  assert.equal(store.load(), 'new-token');
  assert.equal(readFileSync(token, 'utf8'), 'new-token');
  for (const file of [settings, token]) assert.equal(statSync(file).mode & 0o777, 0o600, file);
  assert.deepEqual(readdirSync(join(tmp.dir, 'state')).sort(), ['settings.json', 'site.token']);
});
