/**
 * Launches the real Electron main process with Playwright's _electron where the Electron binary is installed
 * (it cannot be downloaded on the CI machine; there the test reports itself skipped with the reason).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { _electron } from 'playwright-core';
import { CHANNELS } from '../../preload/api.js';
import { buildRenderer, REPO, tempDir } from './harness.js';

function electronBinary(): { path: string } | { skip: string } {
  try {
    const path = createRequire(import.meta.url)('electron') as unknown;
    if (typeof path !== 'string') return { skip: 'the electron package did not resolve to a binary path' };
    return { path };
  } catch (err) {
    return { skip: `Electron binary not installed (optional dependency; its download is not possible here): ${(err as Error).message.split('\n')[0]}` };
  }
}

const electron = electronBinary();

test('Electron: locked-down window exposes only window.fedseg and renders the app', { skip: 'skip' in electron ? electron.skip : false, timeout: 120_000 }, async () => {
  if (!('path' in electron)) return;
  await buildRenderer();
  const built = spawnSync(process.execPath, [join(REPO, 'main/build.mjs')], { cwd: REPO, encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  const app = await _electron.launch({ executablePath: electron.path, args: [REPO], env: { ...process.env, FEDSEG_DATA_DIR: join(tempDir(), 'site') } });
  try {
    const page = await app.firstWindow();
    await page.getByTestId('screen-federation').waitFor({ timeout: 30_000 });
    assert.deepEqual(await page.evaluate(() => Object.keys(window.fedseg).sort()), [...CHANNELS, 'onEvent'].sort());
    assert.equal(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require), 'undefined');
    assert.equal(await page.evaluate(() => typeof (globalThis as { process?: unknown }).process), 'undefined');
    const state = await page.evaluate(() => window.fedseg.getState());
    assert.equal(state.capabilities.shell, 'electron');
    const prefs = await app.evaluate(({ BrowserWindow }) => {
      const contents = BrowserWindow.getAllWindows()[0].webContents as unknown as { getLastWebPreferences(): Record<string, unknown> };
      return contents.getLastWebPreferences();
    });
    assert.equal(prefs.contextIsolation, true);
    assert.equal(prefs.sandbox, true);
    assert.equal(prefs.nodeIntegration, false);
    // Permission checks answer "denied", not Electron's default "granted" (issue 10, E1).
    assert.equal(await page.evaluate(async () => (await navigator.permissions.query({ name: 'notifications' })).state), 'denied');
    // Navigation away and new windows are refused.
    await page.evaluate(() => { window.location.href = 'https://example.org/'; });
    await page.waitForTimeout(500);
    assert.match(page.url(), /^app:\/\/fedseg\//);
    assert.equal(app.windows().length, 1);
  } finally {
    await app.close();
  }
});
