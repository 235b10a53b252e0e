/**
 * Shared set-up of the app tests: the built renderer, a synthetic BraTS dataset (generated once, copied per
 * run so saved masks never leak between runs), a real aggregation server with registered sites, the dev
 * bridge over a real site runtime, and headless Chromium driven by playwright-core.
 */
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { writeSyntheticDataset } from '../../core/synth/index.js';
import { startBridge, type Bridge } from '../../devbridge/bridge.js';
import { parseFederationConfig, type FederationConfigInput } from '../../server/config.js';
import { registerSite, startServer, type RunningServer } from '../../server/index.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
/**
 * Screenshots of each screen are test artifacts (test-artifacts/screenshots). The README's copies in
 * docs/screenshots are refreshed on purpose with FEDSEG_SCREENSHOTS_DIR=docs/screenshots, so a test run
 * never dirties the working tree.
 */
export const SCREENSHOTS = resolve(REPO, process.env.FEDSEG_SCREENSHOTS_DIR ?? 'test-artifacts/screenshots');
const CACHE = join(REPO, 'test-artifacts/app-data');
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

/** Builds renderer/dist with the project's Vite config (about a second). */
export async function buildRenderer(): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: join(REPO, 'vite.config.ts'), root: join(REPO, 'renderer'), logLevel: 'error' });
}

/**
 * Two synthetic hospitals: the desktop app's site (three cases: two train, one held out) and a headless site.
 * Returns a private copy under `dir`.
 */
export async function syntheticSites(dir: string): Promise<{ appData: string; otherData: string }> {
  const marker = join(CACHE, 'complete.json');
  if (!existsSync(marker)) {
    rmSync(CACHE, { recursive: true, force: true });
    const app = await writeSyntheticDataset({ out: join(CACHE, 'a'), sites: 1, casesPerSite: 3, seed: 11 });
    const other = await writeSyntheticDataset({ out: join(CACHE, 'b'), sites: 1, casesPerSite: 1, seed: 12 });
    writeFileSync(marker, JSON.stringify({ app: app.sites[0].cases.map((c) => c.caseId), other: other.sites[0].cases.map((c) => c.caseId) }));
  }
  cpSync(CACHE, join(dir, 'data'), { recursive: true });
  return { appData: join(dir, 'data/a/site-1'), otherData: join(dir, 'data/b/site-1') };
}

export interface Federation {
  server: RunningServer;
  tokens: Record<string, string>;
  /** The server's log lines, for failure messages. */
  log: string[];
}

/** Tiny model so a local round trains in seconds on 2 CPU cores. */
export const TINY_MODEL = { arch: 'unet', baseFilters: 2, depth: 2, inputShape: [16, 16, 16], upsampling: 'nearest' };

export async function startFederation(dir: string, sites: string[], config: Partial<FederationConfigInput> = {}): Promise<Federation> {
  const dbFile = join(dir, 'server/fedseg.db');
  const tokens: Record<string, string> = {};
  for (const name of sites) tokens[name] = registerSite(dbFile, name).token;
  const log: string[] = [];
  const server = await startServer({
    config: parseFederationConfig({
      model: TINY_MODEL, rounds: 2, localEpochs: 1, batchSize: 1, minSites: 1, approvalDeadlineS: 120,
      trainingDeadlineS: 600, evaluationDeadlineS: 120, retryDelayS: 1, heartbeatS: 5, ...config,
    }),
    dbFile, port: 0, log: (line) => log.push(`${new Date().toISOString()} ${line}`),
  });
  return { server, tokens, log };
}

export interface AppSession {
  bridge: Bridge;
  browser: Browser;
  page: Page;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
}

export interface OpenAppOptions {
  viewport?: { width: number; height: number };
  /** Script source run in the page before the app's scripts (a string: tsx would wrap a function in helpers the page lacks). */
  initScript?: string;
}

export async function openApp(dir: string, options: OpenAppOptions = {}): Promise<AppSession> {
  const dataDir = join(dir, 'site-state');
  const logs: string[] = [];
  const bridge = await startBridge({ dataDir, log: (line) => logs.push(line) });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: options.viewport ?? { width: 1400, height: 900 } });
  if (options.initScript) await page.addInitScript({ content: options.initScript });
  page.on('pageerror', (err) => logs.push(`page error: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') logs.push(`console: ${m.text()}`);
  });
  await page.goto(bridge.url);
  return {
    bridge, browser, page, dataDir, logs,
    async close() {
      await browser.close();
      await bridge.close();
    },
  };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'fedseg-app-'));
}

/** Fraction of pixels close to an RGB colour in a PNG screenshot decoded in the page. */
export async function colourFractions(page: Page, png: Buffer, colours: Record<string, [number, number, number]>): Promise<Record<string, number>> {
  return page.evaluate(async ({ data, colours: wanted }) => {
    const blob = new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: 'image/png' });
    const bitmap = await createImageBitmap(blob);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(bitmap, 0, 0);
    const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const out: Record<string, number> = {};
    for (const [name, [r, g, b]] of Object.entries(wanted)) {
      let hits = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (Math.abs(pixels[i] - r) < 60 && Math.abs(pixels[i + 1] - g) < 60 && Math.abs(pixels[i + 2] - b) < 60) hits++;
      }
      out[name] = hits / (pixels.length / 4);
    }
    return out;
  }, { data: png.toString('base64'), colours });
}
