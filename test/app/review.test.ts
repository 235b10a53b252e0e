/**
 * Case review end to end at 1280x720, in Chromium through the dev bridge over the real site runtime: a case
 * opens on its largest tumour slice in radiological convention; display controls (convention, window presets,
 * zoom, readout); predict with a global model; edit; unsaved edits survive screen changes and prompt before
 * they could be lost; saving a final mask raises plausibility warnings that must be confirmed by name; each
 * save is a new version with its provenance; versions are reverted; the ground-truth file never changes; and
 * 30 visits of the viewer leave one WebGL context.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { preprocessToMeta } from '../../core/inference/index.js';
import { makeModelConfig } from '../../core/model/config.js';
import { initialWeights } from '../../core/model/init.js';
import { readNifti } from '../../core/nifti/index.js';
import { preprocessConfig } from '../../core/preprocess/index.js';
import { loadModelFile, saveModelFile } from '../../core/weights/index.js';
import { buildRenderer, CHROMIUM, openApp, SCREENSHOTS, syntheticSites, tempDir, TINY_MODEL, type AppSession } from './harness.js';

const CASE = 'BraTS20_Training_001';
const VIEWPORT = { width: 1280, height: 720 };

/** Counts distinct WebGL contexts the page creates (installed before the app's scripts). */
const COUNT_WEBGL_CONTEXTS = `
  const seen = new Set();
  const original = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
    const context = original.call(this, type, ...rest);
    if (context && /webgl/.test(type)) seen.add(context);
    window.__webglContexts = seen.size;
    return context;
  };
`;

/**
 * Edema volume (WT - TC) as the page shows it, as an expression string: tsx would wrap a named function in a
 * helper the page lacks, and the app's CSP forbids building one there.
 */
const EDEMA_IN_PAGE = ['wt', 'tc'].map((r) => `Number(document.querySelector('[data-testid=volume-${r}]').textContent.replace(' mL', ''))`).join(' - ');

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

test('review: predict, correct, save final with provenance, revert; one viewer across screens', { skip: existsSync(CHROMIUM) ? false : `Chromium not installed at ${CHROMIUM}`, timeout: 600_000 }, async (t) => {
  const dir = tempDir();
  let app: AppSession | null = null;
  try {
    await buildRenderer();
    const { appData } = await syntheticSites(dir);
    // A global model as the federation would have left it after round 3 (untrained: an implausible prediction).
    const stateDir = join(dir, 'site-state');
    mkdirSync(join(stateDir, 'models'), { recursive: true });
    const modelPath = join(stateDir, 'models/global-latest.fsm');
    const config = makeModelConfig(TINY_MODEL as Parameters<typeof makeModelConfig>[0]);
    const weights = initialWeights(config, 4).map((w) => (w.name === 'head.bias' ? { ...w, data: Float32Array.from([0, 0, 0, 1.5]) } : w));
    await saveModelFile(modelPath, config, weights, { ...preprocessToMeta(preprocessConfig()), round: 3 });
    const modelHash = (await loadModelFile(modelPath)).sha256;
    // Admin mode locks after 3 s without input here (default 10 min).
    writeFileSync(join(stateDir, 'settings.json'), JSON.stringify({ version: 1, serverUrl: null, adminPassphrase: null, dataFolder: appData, modelPath, adminIdleSeconds: 3 }));
    const truthFile = join(appData, CASE, `${CASE}_seg.nii.gz`);
    const truthHash = sha256(truthFile);

    app = await openApp(dir, { viewport: VIEWPORT, initScript: COUNT_WEBGL_CONTEXTS });
    const { page } = app;
    const canvasReady = () => page.locator('[data-testid=viewer-canvas][data-ready=yes]').waitFor({ timeout: 90_000 });
    const sliceShown = async () => Number(/slice (\d+) \//.exec(await page.getByTestId('slice-number').innerText())![1]);
    const stroke = async (y: number) => {
      const box = (await page.getByTestId('viewer-canvas').boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * y);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * y, { steps: 4 });
      await page.mouse.up();
    };
    const inViewport = async (testId: string) => {
      const box = (await page.getByTestId(testId).boundingBox())!;
      return box.y >= 0 && box.y + box.height <= VIEWPORT.height && box.x + box.width <= VIEWPORT.width;
    };

    await t.test('opens the case on its largest tumour slice, in radiological convention, with the ground truth labelled', async () => {
      await page.getByTestId('nav-cases').click();
      await page.getByTestId(`open-${CASE}`).click();
      await canvasReady();
      const truth = await readNifti(truthFile);
      const [nx, ny, nz] = truth.header.dims;
      const perSlice = new Array<number>(nz).fill(0);
      for (let i = 0; i < truth.data.length; i++) if (Number(truth.data[i]) !== 0) perSlice[Math.floor(i / (nx * ny))]++;
      assert.equal(await sliceShown(), perSlice.indexOf(Math.max(...perSlice)) + 1, 'axial slice with the most tumour (RAS z = file z for BraTS)');
      assert.equal(await page.getByTestId('viewer-canvas').getAttribute('data-convention'), 'radiological');
      assert.equal(await page.getByTestId('orientation-left').innerText(), 'R');
      assert.equal(await page.getByTestId('canvas-source').innerText(), 'Ground truth');
      assert.ok(await inViewport('save-final'), 'Save is visible at 1280x720 without scrolling');
    });

    await t.test('display: convention toggle, window presets per modality, zoom, readout under the cursor, crosshair', async () => {
      await page.getByTestId('convention').click();
      assert.equal(await page.getByTestId('orientation-left').innerText(), 'L');
      assert.equal(await page.getByTestId('viewer-canvas').getAttribute('data-convention'), 'neurological');
      await page.getByTestId('convention').click();
      assert.equal(await page.getByTestId('orientation-left').innerText(), 'R');
      await page.getByTestId('modality-t1ce').click();
      await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 60_000 });
      assert.equal(await page.getByTestId('window-wide').getAttribute('aria-pressed'), 'true', 'T1ce opens with the wide window');
      const wide = await page.getByTestId('readout').innerText();
      await page.getByTestId('window-auto').click();
      assert.notEqual(await page.getByTestId('readout').innerText(), wide, 'the window changed');
      await page.getByTestId('window-reset').click();
      assert.equal(await page.getByTestId('window-wide').getAttribute('aria-pressed'), 'true');
      await page.getByTestId('modality-flair').click();
      await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 60_000 });
      await page.getByTestId('zoom-in').click();
      assert.equal(await page.getByTestId('zoom-fit').innerText(), '125 %');
      await page.getByTestId('zoom-fit').click();
      assert.equal(await page.getByTestId('zoom-fit').innerText(), '100 %');
      const box = (await page.getByTestId('viewer-canvas').boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      assert.match(await page.getByTestId('readout').innerText(), /^x -?\d+\.\d y -?\d+\.\d z -?\d+\.\d mm · voxel \d+, \d+, \d+ · FLAIR \d+ · label [0124]/);
      await page.getByTestId('crosshair').uncheck();
      await page.getByTestId('crosshair').check();
    });

    await t.test('predicts with the global model of round 3, labelled with its hash on the canvas', async () => {
      await page.getByTestId('predict').click();
      await page.getByTestId('notice').filter({ hasText: 'Prediction ready' }).waitFor({ timeout: 120_000 });
      assert.equal(await page.getByTestId('mask-source').inputValue(), 'prediction');
      assert.equal(await page.getByTestId('canvas-source').innerText(), `Prediction, global model round 3 (${modelHash.slice(0, 12)})`);
    });

    await t.test('unsaved edits survive a screen change, and every way of losing them asks first', async () => {
      await page.getByTestId('tool-pen-1').click();
      const slice = await sliceShown();
      await stroke(0.7);
      await page.getByTestId('unsaved').waitFor();
      let prompt = '';
      page.once('dialog', (d) => { prompt = d.message(); void d.dismiss(); });
      await page.getByTestId('nav-cases').click();
      assert.match(prompt, new RegExp(`${CASE} has unsaved mask edits`));
      assert.equal(await page.getByTestId('screen-viewer').isVisible(), true, 'dismissing stays in the viewer');
      page.once('dialog', (d) => void d.accept());
      await page.getByTestId('nav-cases').click();
      await page.getByTestId('screen-cases').waitFor();
      await page.getByTestId('nav-viewer').click();
      await page.getByTestId('unsaved').waitFor();
      assert.equal(await sliceShown(), slice, 'back on the same slice');
      assert.equal(await page.getByTestId('mask-source').inputValue(), 'prediction');
      const blocksUnload = await page.evaluate(() => {
        const event = new Event('beforeunload', { cancelable: true });
        window.dispatchEvent(event);
        return event.defaultPrevented;
      });
      assert.equal(blocksUnload, true, 'closing or reloading asks first');
      page.once('dialog', (d) => { prompt = d.message(); void d.dismiss(); });
      await page.getByTestId('mask-source').selectOption('truth');
      assert.match(prompt, /Discard the unsaved edits/);
      assert.equal(await page.getByTestId('mask-source').inputValue(), 'prediction');
    });

    await t.test('saving the implausible prediction needs a confirmation naming each warning; it becomes final v1 with its provenance', async () => {
      await page.getByTestId('tool-off').click();
      await page.getByTestId('save-final').click();
      await page.getByTestId('confirm-save').waitFor({ timeout: 60_000 });
      const warnings = await page.locator('[data-testid^=warning-]').allInnerTexts();
      assert.ok(warnings.length > 0);
      assert.ok(await page.getByTestId('warning-too-large').isVisible() || await page.getByTestId('warning-outside-brain').isVisible(), warnings.join('; '));
      assert.equal(existsSync(join(stateDir, 'final-masks', CASE, 'v1.nii.gz')), false, 'nothing written before the confirmation');
      await page.getByTestId('confirm-save-anyway').click();
      await page.getByTestId('notice').filter({ hasText: 'Saved final mask v1' }).waitFor({ timeout: 60_000 });
      assert.equal(await page.getByTestId('case-status').innerText(), 'final');
      const provenance = await page.getByTestId('provenance-1').innerText();
      assert.match(provenance, new RegExp(`from Prediction, global model round 3 \\(${modelHash.slice(0, 12)}\\); Dice ET \\d\\.\\d{3} / TC \\d\\.\\d{3} / WT \\d\\.\\d{3}; WT \\d+\\.\\d → \\d+\\.\\d mL · accepted: `));
      assert.match(await page.getByTestId('version-1').innerText(), /in use/);
      assert.equal(await page.getByTestId('canvas-source').innerText(), 'Final v1');
      assert.equal(sha256(truthFile), truthHash, 'the ground truth is untouched');
    });

    await t.test('a correction of the ground truth saves as v2 without warnings; reverting goes back to v1, then to the ground truth', async () => {
      await page.getByTestId('mask-source').selectOption('truth');
      await page.getByTestId('canvas-source').filter({ hasText: 'Ground truth' }).waitFor();
      await page.getByTestId('tool-pen-2').click();
      await stroke(0.72);
      await page.getByTestId('unsaved').waitFor();
      await page.getByTestId('tool-off').click();
      await page.getByTestId('save-final').click();
      await page.getByTestId('notice').filter({ hasText: 'Saved final mask v2' }).waitFor({ timeout: 60_000 });
      const [, before, after] = /^from Ground truth; Dice ET 1\.000 \/ TC 1\.000 \/ WT \d\.\d{3}; WT (\d+\.\d) → (\d+\.\d) mL$/.exec(await page.getByTestId('provenance-2').innerText()) ?? [];
      assert.ok(Number(after) > Number(before), `the edema stroke adds to the whole tumour (${before} → ${after} mL)`);
      assert.equal(existsSync(join(stateDir, 'final-masks', CASE, 'v2.nii.gz')), true);
      await page.getByTestId('use-version-1').click();
      await page.getByTestId('version-1').filter({ hasText: 'in use' }).waitFor();
      await page.getByTestId('use-truth').click();
      await page.getByTestId('version-truth').filter({ hasText: 'in use' }).waitFor();
      assert.equal(await page.getByTestId('case-status').innerText(), 'not reviewed');
      await page.getByTestId('nav-cases').click();
      assert.equal(await page.getByTestId(`case-${CASE}-training`).innerText(), 'used, with the ground truth');
      const audit = readFileSync(join(stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; action?: string; version?: number | null });
      assert.deepEqual(audit.filter((a) => a.kind === 'final-mask').map((a) => [a.action, a.version]), [['saved', 1], ['saved', 2], ['chosen', 1], ['chosen', null]]);
      assert.equal(sha256(truthFile), truthHash, 'the ground truth is byte-identical after saves and reverts');
    });

    await t.test('edits with pen sizes, fill and interpolation, undo/redo keys, label keys; OK and next; flags on the slider; compares with outlines and a difference', async () => {
      const volume = async (id: string) => Number((await page.getByTestId(id).innerText()).replace(' mL', ''));
      const settle = async (id: string, before: number, grows: boolean) => {
        await page.waitForFunction(({ testId, v, up }) => {
          const now = Number(document.querySelector(`[data-testid=${testId}]`)!.textContent!.replace(' mL', ''));
          return up ? now > v : now < v;
        }, { testId: id, v: before, up: grows });
        return volume(id);
      };
      await page.getByTestId('nav-viewer').click();
      await page.getByTestId('mask-source').selectOption('none');
      await page.getByTestId('canvas-source').filter({ hasText: 'Blank mask' }).waitFor();
      await page.getByTestId('viewer-canvas').focus();
      await page.keyboard.press('1');
      assert.equal(await page.getByTestId('tool-pen').getAttribute('aria-pressed'), 'true', 'a label key picks the pen');
      assert.equal(await page.getByTestId('tool-pen-1').getAttribute('aria-pressed'), 'true');
      await page.getByTestId('pen-size').selectOption('3');
      await stroke(0.6);
      const small = await settle('volume-tc', 0, true);
      await page.keyboard.press('Control+z');
      await settle('volume-tc', small, false);
      assert.equal(await volume('volume-tc'), 0, 'Ctrl+Z undoes the stroke');
      await page.keyboard.press('Control+Shift+z');
      assert.equal(await settle('volume-tc', 0, true), small, 'Ctrl+Shift+Z redoes it');
      await page.getByTestId('pen-size').selectOption('9');
      await page.getByTestId('viewer-canvas').focus();
      await stroke(0.66);
      const big = await settle('volume-tc', small, true);
      assert.ok(big - small > 2 * small, `a size-9 stroke (${big - small} mL) paints more than a size-3 one (${small} mL)`);
      // Fill: a closed loop gets its inside painted too.
      await page.getByTestId('pen-size').selectOption('1');
      await page.getByTestId('tool-fill').click();
      const box = (await page.getByTestId('viewer-canvas').boundingBox())!;
      const at = (fx: number, fy: number) => [box.x + box.width * fx, box.y + box.height * fy] as const;
      await page.mouse.move(...at(0.45, 0.35));
      await page.mouse.down();
      for (const [fx, fy] of [[0.55, 0.35], [0.55, 0.45], [0.45, 0.45], [0.45, 0.35]]) await page.mouse.move(...at(fx, fy), { steps: 6 });
      await page.mouse.up();
      const filled = await settle('volume-tc', big, true);
      assert.ok(filled - big > 0.5, `the loop is filled (${(filled - big).toFixed(2)} mL)`);
      // Grow: a click fills the connected region of similar intensity on this slice; Ctrl+Z takes it back.
      await page.getByTestId('tool-grow').click();
      await page.mouse.click(...at(0.38, 0.5));
      const grown = await settle('volume-tc', filled, true);
      await page.getByTestId('viewer-canvas').focus();
      await page.keyboard.press('Control+z');
      assert.equal(await settle('volume-tc', grown, false), filled, 'undo removes the grown region');
      await page.getByTestId('tool-fill').click();
      // Interpolation: label 2 on two slices six apart, then the slices between are filled.
      await page.getByTestId('viewer-canvas').focus();
      await page.keyboard.press('2');
      assert.equal(await page.getByTestId('tool-fill').getAttribute('aria-pressed'), 'true', 'a label key keeps the labelling tool');
      const edema = async () => (await volume('volume-wt')) - (await volume('volume-tc'));
      const loop = async () => {
        await page.mouse.move(...at(0.6, 0.55));
        await page.mouse.down();
        for (const [fx, fy] of [[0.68, 0.55], [0.68, 0.63], [0.6, 0.63], [0.6, 0.55]]) await page.mouse.move(...at(fx, fy), { steps: 6 });
        await page.mouse.up();
      };
      await loop();
      await page.waitForFunction(() => document.querySelector('[data-testid=volume-wt]')!.textContent !== document.querySelector('[data-testid=volume-tc]')!.textContent);
      const oneSlice = await edema();
      const slice = await sliceShown();
      await page.getByTestId('viewer-canvas').focus();
      for (let k = 0; k < 6; k++) await page.keyboard.press('ArrowUp');
      await page.getByTestId('slice-number').filter({ hasText: `slice ${slice + 6} ` }).waitFor();
      await loop();
      await page.waitForFunction(`(${EDEMA_IN_PAGE}) > ${oneSlice * 1.5}`);
      const twoSlices = await edema();
      assert.equal(await page.getByTestId('interpolate').innerText(), `Interpolate ${slice}–${slice + 6}`);
      await page.getByTestId('interpolate').click();
      await page.waitForFunction(`(${EDEMA_IN_PAGE}) > ${twoSlices + 0.1}`);
      assert.ok((await edema()) > twoSlices * 2, `the 5 slices between are filled (${twoSlices.toFixed(2)} -> ${(await edema()).toFixed(2)} mL)`);
      // OK and next; the flagged slice shows on the slider.
      await page.getByTestId('tool-off').click();
      await page.getByTestId('mark-wrong').click();
      await page.getByTestId('slider-flags').locator('.flag-wrong').waitFor();
      const before = await sliceShown();
      await page.getByTestId('ok-next').click();
      await page.getByTestId('slider-flags').locator('.flag-ok').waitFor();
      await page.waitForFunction((s) => !document.querySelector('[data-testid=slice-number]')!.textContent!.includes(`slice ${s} `), before);
      // Prediction filled, ground truth as an outline, then the difference; the canvas says which is which.
      page.once('dialog', (d) => void d.accept());
      await page.getByTestId('mask-source').selectOption('prediction');
      await page.getByTestId('canvas-source').filter({ hasText: /^Prediction/ }).waitFor();
      await page.getByTestId('compare-with').selectOption('truth');
      await page.getByTestId('canvas-source').filter({ hasText: 'vs Ground truth (magenta outline)' }).waitFor();
      await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 60_000 });
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'review.png'), timeout: 120_000 });
      await page.getByTestId('compare-difference').click();
      await page.getByTestId('canvas-source').filter({ hasText: 'vs Ground truth (red: only shown, cyan: only compared' }).waitFor();
      await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 60_000 });
      await page.getByTestId('compare-with').selectOption('none');
      assert.equal(await page.getByTestId('unsaved').count(), 0);
    });

    await t.test('admin mode locks itself after the idle time', async () => {
      await page.getByTestId('admin-passphrase').fill('radiology admin 2026');
      await page.getByTestId('admin-confirm').fill('radiology admin 2026');
      await page.getByTestId('admin-unlock').click();
      await page.getByTestId('role').filter({ hasText: 'Site admin' }).waitFor();
      await page.getByTestId('role').filter({ hasText: 'Reviewer' }).waitFor({ timeout: 15_000 });
      assert.match(await page.getByTestId('notice').innerText(), /Admin mode locked after 3 s without activity/);
    });

    await t.test('30 visits of the viewer leave one WebGL context and reopen at the same slice and view', async () => {
      await page.getByTestId('nav-viewer').click();
      await page.getByTestId('view-coronal').click();
      const slice = await sliceShown();
      for (let i = 0; i < 30; i++) {
        await page.getByTestId('nav-cases').click();
        await page.getByTestId('nav-viewer').click();
      }
      assert.equal(await sliceShown(), slice);
      assert.match(await page.getByTestId('slice-number').innerText(), /^coronal/);
      assert.equal(await page.evaluate(() => (window as unknown as { __webglContexts: number }).__webglContexts), 1);
      assert.equal(await page.locator('canvas').count(), 1);
    });
  } finally {
    if (app) {
      if (app.logs.some((l) => /page error/.test(l))) console.error(app.logs.join('\n'));
      await app.close();
    }
  }
});
