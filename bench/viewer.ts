/**
 * Viewer benchmark: opening a case (FLAIR + ground truth, 240x240x155) and stepping one slice, in headless
 * Chromium with software WebGL (SwiftShader) through the dev bridge, as the app tests run it. Each phase is
 * split by CPU time per process (Chromium's SystemInfo): the renderer process (the app's own JS, Niivue's JS and
 * Blink), the GPU process (SwiftShader executing the WebGL calls), and the site runtime reading the volumes
 * (the rest of the wall time: waiting on the bridge and the service).
 *
 *   node --import tsx bench/viewer.ts [--quick]     (also `fedseg bench viewer`)
 */
import { existsSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { CDPSession } from 'playwright-core';
import { buildRenderer, CHROMIUM, openApp, syntheticSites, tempDir } from '../test/app/harness.js';

const CASE = 'BraTS20_Training_001';

interface Split { wallMs: number; rendererCpuMs: number; gpuCpuMs: number }

async function cpuByProcess(cdp: CDPSession): Promise<{ renderer: number; gpu: number }> {
  const { processInfo } = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: Array<{ type: string; cpuTime: number }> };
  const sum = (type: string) => processInfo.filter((p) => p.type === type).reduce((s, p) => s + p.cpuTime, 0) * 1000;
  return { renderer: sum('renderer'), gpu: sum('GPU') };
}

async function measure(cdp: CDPSession, work: () => Promise<void>): Promise<Split> {
  const before = await cpuByProcess(cdp);
  const start = performance.now();
  await work();
  const wallMs = performance.now() - start;
  const after = await cpuByProcess(cdp);
  return { wallMs, rendererCpuMs: after.renderer - before.renderer, gpuCpuMs: after.gpu - before.gpu };
}

function row(name: string, s: Split): string {
  const other = Math.max(0, s.wallMs - s.rendererCpuMs - s.gpuCpuMs);
  return `${name.padEnd(22)} ${s.wallMs.toFixed(0).padStart(7)} ${s.rendererCpuMs.toFixed(0).padStart(12)} ${s.gpuCpuMs.toFixed(0).padStart(14)} ${other.toFixed(0).padStart(12)}`;
}

export async function runViewerBench(options: { quick?: boolean } = {}): Promise<{ table: string; json: unknown }> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM}`);
  const dir = tempDir();
  const steps = options.quick ? 10 : 40;
  try {
    await buildRenderer();
    const { appData } = await syntheticSites(dir);
    const app = await openApp(dir, { viewport: { width: 1280, height: 720 } });
    try {
      const { page } = app;
      const cdp = await page.context().browser()!.newBrowserCDPSession();
      await page.getByTestId('nav-cases').click();
      await page.getByTestId('folder-path').fill(appData);
      await page.getByTestId('import').click();
      await page.getByTestId(`open-${CASE}`).waitFor();
      const open = await measure(cdp, async () => {
        await page.getByTestId(`open-${CASE}`).click();
        await page.locator('[data-testid=viewer-canvas][data-ready=yes]').waitFor({ timeout: 120_000 });
      });
      await page.getByTestId('viewer-canvas').focus();
      const sliceText = () => page.getByTestId('slice-number').innerText();
      const step = await measure(cdp, async () => {
        for (let k = 0; k < steps; k++) {
          const before = await sliceText();
          await page.keyboard.press(k % 2 === 0 ? 'ArrowUp' : 'ArrowDown');
          await page.waitForFunction((text) => document.querySelector('[data-testid=slice-number]')!.textContent !== text, before);
          // One frame after the slice number changed, so the draw has been issued.
          await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(null))));
        }
      });
      const perStep: Split = { wallMs: step.wallMs / steps, rendererCpuMs: step.rendererCpuMs / steps, gpuCpuMs: step.gpuCpuMs / steps };
      const header = `${'phase'.padEnd(22)} ${'wall ms'.padStart(7)} ${'renderer CPU'.padStart(12)} ${'GPU process CPU'.padStart(14)} ${'rest (wait)'.padStart(12)}`;
      const table = [
        `viewer: ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}; Chromium software WebGL (SwiftShader); renderer = app + Niivue JS and Blink, GPU process = SwiftShader`,
        header, row('open case (FLAIR+GT)', open), row(`slice step (mean of ${steps})`, perStep),
      ].join('\n');
      return { table, json: { name: 'viewer', cores: cpus().length, load: loadavg()[0], openCase: open, sliceStep: perStep, steps } };
    } finally {
      await app.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runViewerBench({ quick: process.argv.includes('--quick') });
  console.log(result.table);
  console.log(JSON.stringify(result.json));
}
