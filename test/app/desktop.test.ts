/**
 * The desktop app end to end, in Chromium through the dev bridge: the real renderer, the real site runtime
 * (forked exactly as Electron's utilityProcess would be), a real aggregation server and a second, headless
 * site, on synthetic BraTS data. Screenshots of each screen go to SCREENSHOTS (see harness.ts).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readNifti, readNiftiHeader } from '../../core/nifti/index.js';
import {
  buildRenderer, colourFractions, CHROMIUM, openApp, REPO, SCREENSHOTS, startFederation, syntheticSites, tempDir,
  type AppSession, type Federation,
} from './harness.js';

const APP_SITE = 'hospital-app';
const OTHER_SITE = 'hospital-b';
const PASSPHRASE = 'site admin passphrase';
const CASE = 'BraTS20_Training_001';

test('desktop app: federation, approval, cases, viewer, review and mask editing', { skip: existsSync(CHROMIUM) ? false : `Chromium not installed at ${CHROMIUM}`, timeout: 290_000 }, async (t) => {
  const dir = tempDir();
  let federation: Federation | null = null;
  let headless: ChildProcess | null = null;
  const headlessOutput: string[] = [];
  let app: AppSession | null = null;
  try {
    await buildRenderer();
    const { appData, otherData } = await syntheticSites(dir);
    federation = await startFederation(dir, [APP_SITE, OTHER_SITE]);
    mkdirSync(SCREENSHOTS, { recursive: true });
    // The site's 2 training cases reach this floor, its 1 held-out case does not (the default is SPEC's 5).
    mkdirSync(join(dir, 'site-state'), { recursive: true });
    writeFileSync(join(dir, 'site-state/settings.json'), JSON.stringify({ version: 1, serverUrl: null, adminPassphrase: null, dataFolder: null, modelPath: null, minMetricCases: 2 }));
    app = await openApp(dir, { viewport: { width: 1280, height: 720 } });
    const { page } = app;
    const fed = federation;

    await t.test('a reviewer cannot connect or approve until the admin passphrase unlocks admin mode', async () => {
      await page.getByTestId('connect').waitFor();
      assert.equal(await page.getByTestId('connect').isDisabled(), true);
      await page.getByTestId('nav-approval').click();
      assert.match(await page.getByTestId('no-pending').innerText(), /No round/);
      // First run: the passphrase is typed twice and must pass the strength rule.
      await page.getByTestId('admin-passphrase').fill('short');
      await page.getByTestId('admin-confirm').fill('short');
      await page.getByTestId('admin-unlock').click();
      assert.match(await page.getByTestId('error').innerText(), /too weak: use at least 12 characters/);
      await page.getByTestId('admin-passphrase').fill(PASSPHRASE);
      await page.getByTestId('admin-confirm').fill(`${PASSPHRASE}x`);
      await page.getByTestId('admin-unlock').click();
      assert.match(await page.getByTestId('error').innerText(), /two passphrases differ/);
      await page.getByTestId('admin-passphrase').fill(PASSPHRASE);
      await page.getByTestId('admin-confirm').fill(PASSPHRASE);
      await page.getByTestId('admin-unlock').click();
      await page.getByTestId('role').filter({ hasText: 'Site admin' }).waitFor();
      // Wrong guesses back off: after the third the next attempt waits a second (test/app/bridge.test.ts covers the rest).
      await page.getByTestId('admin-lock').click();
      for (const guess of ['guess one', 'guess two', 'guess three']) {
        await page.getByTestId('admin-passphrase').fill(guess);
        await page.getByTestId('admin-unlock').click();
        await page.getByTestId('error').waitFor();
      }
      assert.match(await page.getByTestId('error').innerText(), /^Wrong admin passphrase\. The next attempt is accepted in 1 s\./);
      await page.waitForTimeout(1100);
      await page.getByTestId('admin-passphrase').fill(PASSPHRASE);
      await page.getByTestId('admin-unlock').click();
      await page.getByTestId('role').filter({ hasText: 'Site admin' }).waitFor();
    });

    await t.test('importing a folder that is not a dataset says so in plain words', async () => {
      await page.getByTestId('nav-cases').click();
      await page.getByTestId('folder-path').fill(join(dir, 'no-such-folder'));
      await page.getByTestId('import').click();
      const message = await page.getByTestId('error').innerText();
      assert.match(message, /does not exist/);
      assert.doesNotMatch(message, /\bat .*\.ts:\d+/);
    });

    await t.test('imports the site\'s BraTS folder with a validation result per case', async () => {
      await page.getByTestId('folder-path').fill(appData);
      await page.getByTestId('import').click();
      await page.getByTestId(`case-${CASE}`).waitFor();
      assert.equal(await page.locator('[data-testid^=case-BraTS20][data-testid$=-status]').count(), 3);
      assert.match(await page.getByTestId(`case-${CASE}`).innerText(), /valid|ground truth/);
    });

    await t.test('a wrong token is refused in plain words', async () => {
      await page.getByTestId('nav-federation').click();
      await page.getByTestId('server-url').fill(fed.server.wsUrl);
      await page.getByTestId('site-token').fill('not-a-real-token');
      await page.getByTestId('connect').click();
      assert.match(await page.getByTestId('error').innerText(), /refused this site.*token/i);
    });

    await t.test('connects with the site token', async () => {
      await page.getByTestId('site-token').fill(fed.tokens[APP_SITE]);
      await page.getByTestId('connect').click();
      await page.getByTestId('site-name').filter({ hasText: APP_SITE }).waitFor();
    });

    const cardKeys: Record<string, string[]> = {};
    await t.test('the approval card shows the federation, round k of N, attempt, training parameters and every key that would leave', async () => {
      headless = spawn(process.execPath, [join(REPO, 'bin/fedseg.js'), 'site', '--server', fed.server.wsUrl, '--data', otherData, '--auto-approve', '--min-metric-cases', '1'], {
        cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FEDSEG_SITE_TOKEN: fed.tokens[OTHER_SITE] },
      });
      headless.stdout!.on('data', (chunk: Buffer) => headlessOutput.push(chunk.toString()));
      headless.stderr!.on('data', (chunk: Buffer) => headlessOutput.push(chunk.toString()));
      await page.getByTestId('approval-waiting').waitFor({ timeout: 30_000 });
      assert.match(await page.title(), /^Round 1 waits for approval/);
      await page.getByTestId('nav-approval').click();
      await page.getByTestId('pending-round').waitFor({ timeout: 30_000 });
      assert.match(await page.getByTestId('pending-round').locator('h2').innerText(), /^Round 1 of 2 is waiting for your decision\s*attempt 1$/);
      assert.match(await page.getByTestId('federation-server').innerText(), new RegExp(`^${fed.server.wsUrl.replace(/[/.]/g, '\\$&')} as site ${APP_SITE}$`));
      assert.match(await page.getByTestId('training-parameters').innerText(), /^1 epoch\(s\), batch size 1, learning rate [\d.e-]+, seed -?\d+; on 2 training case\(s\)/);
      assert.equal(await page.getByTestId('outgoing-cases').innerText(), '2');
      for (const message of ['update', 'progress', 'evaluation']) {
        cardKeys[message] = await page.getByTestId(`outgoing-${message}`).locator('code[data-key]').evaluateAll((codes) => codes.map((c) => c.getAttribute('data-key')!));
      }
      assert.deepEqual(cardKeys.update, ['weights', 'numCases', 'metrics.loss', 'metrics.steps', 'metrics.seconds', 'trainingSeconds', 'norm']);
      assert.deepEqual(cardKeys.evaluation, ['numCases'], 'one held-out case: its Dice and HD95 are withheld');
      assert.match(await page.getByTestId('withheld-evaluation').innerText(), /fewer than 2 cases: dice_ET, dice_TC, dice_WT, hd95_ET, hd95_TC, hd95_WT/);
      await page.screenshot({ path: join(SCREENSHOTS, 'approval.png') });
    });

    await t.test('declines round 1 with a reason, and is left out while the other site completes it', async () => {
      assert.equal(await page.getByTestId('decline').isDisabled(), true, 'no decline without a reason');
      await page.getByTestId('decline-reason').fill('cases still under review');
      await page.getByTestId('decline').click();
      await page.getByTestId('audit').filter({ hasText: 'declined' }).waitFor();
      assert.match(await page.getByTestId('audit').innerText(), /declined\s+\S+\s+cases still under review/);
      assert.equal(await page.getByTestId('notice').getAttribute('class'), 'banner banner-info', 'a decline is not shown as a success');
      await page.getByTestId('nav-federation').click();
      await page.locator('[data-testid=round-1][data-status=left-out]').waitFor({ timeout: 120_000 });
      await page.getByTestId('round-1-sites').filter({ hasText: /^1 of/ }).waitFor({ timeout: 120_000 });
      assert.equal(fed.server.store.approvals(1).find((a) => a.site === APP_SITE)?.reason, 'declined by the site admin: cases still under review', 'the reason reached the server');
    });

    await t.test('approves round 2, trains locally and sees the round complete with both sites; the wire carried exactly the card\'s keys', async () => {
      await page.getByTestId('nav-approval').click();
      await page.getByTestId('pending-round').filter({ hasText: 'Round 2' }).waitFor({ timeout: 60_000 });
      await page.getByTestId('approve').click();
      await page.getByTestId('audit').filter({ hasText: 'approved' }).waitFor();
      await page.getByTestId('nav-training').click();
      await page.getByTestId('backend').filter({ hasNotText: 'not started' }).waitFor({ timeout: 120_000 });
      await page.getByTestId('nav-federation').click();
      await page.locator('[data-testid=round-2][data-status=complete]').waitFor({ timeout: 180_000 }).catch((err: Error) => {
        assert.fail(`${err.message}\nserver log:\n${fed.log.slice(-200).join('\n')}\nheadless site:\n${headlessOutput.slice(-200).join('')}\napp log:\n${app!.logs.join('\n')}`);
      });
      await page.getByTestId('round-2-sites').filter({ hasText: /^2 of 2 sites/ }).waitFor();
      assert.match(await page.getByTestId('round-1-sites').innerText(), /^1 of 2 sites/);
      // The server stores an update's metrics plus its own numCases and updateNorm, an evaluation's plus numCases.
      const received = (kind: 'train' | 'eval') => fed.server.store.metrics(kind).filter((m) => m.site === APP_SITE && m.round === 2)
        .map((m) => m.name).filter((n) => n !== 'numCases' && n !== 'updateNorm').sort();
      const listed = (keys: string[]) => keys.filter((k) => k.startsWith('metrics.')).map((k) => k.slice('metrics.'.length)).sort();
      assert.deepEqual(received('train'), listed(cardKeys.update));
      for (let i = 0; i < 60 && !fed.server.store.metrics('eval').some((m) => m.site === APP_SITE && m.round === 2); i++) await new Promise((r) => setTimeout(r, 500));
      assert.ok(fed.server.store.metrics('eval').some((m) => m.site === APP_SITE && m.round === 2 && m.name === 'numCases'), 'the evaluation was sent');
      assert.deepEqual(received('eval'), listed(cardKeys.evaluation));
      const audit = readFileSync(join(app!.dataDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; round?: number; sha256?: string; by?: string });
      assert.match(audit.find((a) => a.kind === 'update-sent' && a.round === 2)?.sha256 ?? '', /^[0-9a-f]{64}$/, 'the update sent is audited by its SHA-256');
      assert.ok(audit.filter((a) => a.kind === 'round-decision').every((a) => typeof a.by === 'string' && a.by.length > 0), 'decisions name the admin');
      const trained = audit.find((a) => a.kind === 'training-masks' && a.round === 2) as { masks: Array<{ caseId: string; mask: string }> } | undefined;
      assert.deepEqual(trained?.masks.map((m) => m.mask), ['ground truth', 'ground truth', 'ground truth'], 'the audit says which mask each case trained with');
      await page.getByTestId('notice').getByRole('button').click();
      await page.screenshot({ path: join(SCREENSHOTS, 'federation.png') });
    });

    await t.test('training screen shows the backend, the loss curve and the global metrics per round', async () => {
      await page.getByTestId('nav-training').click();
      await page.getByTestId('metrics-table').waitFor({ timeout: 60_000 });
      assert.ok(await page.locator('[data-testid=metrics-chart] circle').count() > 0, 'global Dice plotted per round');
      assert.ok(await page.locator('[data-testid=loss-chart] polyline').count() > 0, 'loss curve drawn');
      assert.match(await page.getByTestId('progress-text').innerText(), /Round 2: epoch 1 of 1/);
      await page.screenshot({ path: join(SCREENSHOTS, 'training.png') });
    });

    let sliceBefore = 0;
    await t.test('opens a case and shows the ground-truth overlay in the BraTS colours', async () => {
      await page.getByTestId('nav-cases').click();
      await page.getByTestId(`open-${CASE}`).click();
      await page.locator('[data-testid=viewer-canvas][data-ready=yes]').waitFor({ timeout: 90_000 });
      assert.ok(Number((await page.getByTestId('volume-wt').innerText()).replace(' mL', '')) > 1);
      await page.getByTestId('opacity').fill('1');
      // A clipped page screenshot: element screenshots wait much longer on software-rendered WebGL.
      const canvasShot = async () => page.screenshot({ clip: (await page.getByTestId('viewer-canvas').boundingBox())! });
      const shot = await canvasShot();
      const found = await colourFractions(page, shot, { blue: [0, 0, 255], green: [0, 255, 0], yellow: [255, 255, 0] });
      assert.ok(found.green > 0.001, `edema (green) visible: ${JSON.stringify(found)}`);
      assert.ok(found.yellow > 0.0005, `enhancing tumour (yellow) visible: ${JSON.stringify(found)}`);
      assert.ok(found.blue > 0.0002, `necrotic core (blue) visible: ${JSON.stringify(found)}`);
      await page.getByTestId('label-2').uncheck();
      const hidden = await colourFractions(page, await canvasShot(), { green: [0, 255, 0] });
      assert.ok(hidden.green < found.green / 10, 'unchecking label 2 hides the edema');
      await page.getByTestId('label-2').check();
      await page.getByTestId('opacity').fill('0.6');
      await page.screenshot({ path: join(SCREENSHOTS, 'viewer.png') });
      sliceBefore = sliceIndex(await page.getByTestId('slice-number').innerText());
    });

    await t.test('steps slices with keys and buttons, flags a slice and jumps back to it', async () => {
      // Keys step slices when the canvas has focus, never while a slider or checkbox has it.
      await page.getByTestId('viewer-canvas').focus();
      await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowUp');
      await page.getByTestId('slice-number').filter({ hasText: `slice ${sliceBefore + 2} ` }).waitFor();
      await page.getByTestId('slice-prev').click();
      await page.getByTestId('slice-number').filter({ hasText: `slice ${sliceBefore + 1} ` }).waitFor();
      await page.getByTestId('mark-wrong').click();
      await page.getByTestId('slice-mark').filter({ hasText: 'Flagged' }).waitFor();
      await page.getByTestId('slice-next').click();
      await page.getByTestId('mark-ok').click();
      await page.getByTestId('slice-mark').filter({ hasText: 'Marked OK' }).waitFor();
      await page.getByTestId('next-flagged').click();
      await page.getByTestId('slice-number').filter({ hasText: `slice ${sliceBefore + 1} ` }).waitFor();
      await page.getByTestId('next-unreviewed').click();
      const next = sliceIndex(await page.getByTestId('slice-number').innerText());
      assert.notEqual(next, sliceBefore + 1);
      assert.notEqual(next, sliceBefore + 2);
      await page.getByTestId('case-status').filter({ hasText: 'in review' }).waitFor();
    });

    await t.test('switches view and modality, keeping the overlay', async () => {
      await page.getByTestId('view-coronal').click();
      await page.getByTestId('slice-number').filter({ hasText: /^coronal slice \d+ \/ 240$/ }).waitFor();
      await page.getByTestId('view-multiplanar').click();
      await page.getByTestId('slice-number').filter({ hasText: /^axial slice/ }).waitFor();
      await page.getByTestId('view-axial').click();
      const wt = await page.getByTestId('volume-wt').innerText();
      await page.getByTestId('modality-t2').click();
      await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 60_000 });
      assert.equal(await page.getByTestId('modality-t2').getAttribute('class'), 'on');
      assert.equal(await page.getByTestId('volume-wt').innerText(), wt, 'the mask is kept across modalities');
      await page.getByTestId('modality-flair').click();
      await page.getByTestId('busy').waitFor({ state: 'detached', timeout: 60_000 });
    });

    await t.test('draws with the label pen, undoes, erases, undoes, and saves a valid final mask with the drawn voxels', async () => {
      const truth = await readNifti(join(appData, CASE, `${CASE}_seg.nii.gz`));
      const reference = await readNiftiHeader(join(appData, CASE, `${CASE}_flair.nii.gz`));
      await page.getByTestId('tool-pen-1').click();
      const box = (await page.getByTestId('viewer-canvas').boundingBox())!;
      // A stroke across the lower (healthy) half of the brain, far from the tumour.
      const stroke = async () => {
        await page.mouse.move(box.x + box.width * 0.42, box.y + box.height * 0.72);
        await page.mouse.down();
        await page.mouse.move(box.x + box.width * 0.58, box.y + box.height * 0.72, { steps: 4 });
        await page.mouse.up();
      };
      await stroke();
      await page.getByTestId('unsaved').waitFor();
      const drawn = Number((await page.getByTestId('volume-tc').innerText()).replace(' mL', ''));
      await page.getByTestId('undo').click();
      await page.waitForFunction((v) => Number(document.querySelector('[data-testid=volume-tc]')!.textContent!.replace(' mL', '')) < v, drawn);
      await stroke();
      const volumeTc = async () => Number((await page.getByTestId('volume-tc').innerText()).replace(' mL', ''));
      await page.waitForFunction((v) => Number(document.querySelector('[data-testid=volume-tc]')!.textContent!.replace(' mL', '')) >= v, drawn);
      // The eraser removes the stroke again; undo brings it back.
      await page.getByTestId('tool-erase').click();
      await stroke();
      await page.waitForFunction((v) => Number(document.querySelector('[data-testid=volume-tc]')!.textContent!.replace(' mL', '')) < v, drawn);
      assert.ok((await volumeTc()) < drawn);
      await page.getByTestId('undo').click();
      await page.waitForFunction((v) => Number(document.querySelector('[data-testid=volume-tc]')!.textContent!.replace(' mL', '')) >= v, drawn);
      await page.getByTestId('tool-off').click();
      await page.getByTestId('save-final').click();
      await page.getByTestId('notice').filter({ hasText: 'Saved final mask v1' }).waitFor();
      await page.getByTestId('case-status').filter({ hasText: 'final' }).waitFor();

      const saved = await readNifti(join(app!.dataDir, 'final-masks', CASE, 'v1.nii.gz'));
      assert.deepEqual(saved.header.dims, [240, 240, 155]);
      assert.equal(saved.header.datatype.name, 'uint8');
      assert.deepEqual(saved.header.affine, reference.header.affine);
      assert.equal(saved.text.descrip, '');
      const changed: number[] = [];
      for (let i = 0; i < saved.data.length; i++) {
        const v = Number(saved.data[i]);
        assert.ok(v === 0 || v === 1 || v === 2 || v === 4, `label ${v} at ${i}`);
        if (v !== Number(truth.data[i])) changed.push(i);
      }
      assert.ok(changed.length > 10, `the stroke changed ${changed.length} voxels`);
      const planes = new Set(changed.map((i) => Math.floor(i / (240 * 240))));
      assert.equal(planes.size, 1, 'the stroke lies in one axial slice');
      assert.ok(changed.every((i) => saved.data[i] === 1), 'every drawn voxel carries the pen label 1');
      assert.equal([...planes][0], sliceIndex(await page.getByTestId('slice-number').innerText()) - 1, 'drawn on the slice shown');
    });

    await t.test('predicts the case with the federated global model and scores it against the ground truth', async () => {
      await page.getByTestId('predict').click();
      await page.getByTestId('notice').filter({ hasText: 'Prediction ready' }).waitFor({ timeout: 120_000 });
      assert.equal(await page.getByTestId('mask-source').inputValue(), 'prediction');
      assert.ok(existsSync(join(app!.dataDir, 'predictions', `${CASE}_pred_seg.nii.gz`)), 'prediction kept in the app data folder');
      await page.getByTestId('nav-cases').click();
      assert.match(await page.getByTestId(`case-${CASE}`).innerText(), /\d\.\d{3} \/ \d\.\d{3} \/ \d\.\d{3}/);
      assert.match(await page.getByTestId(`case-${CASE}-status`).innerText(), /Final/);
      await page.screenshot({ path: join(SCREENSHOTS, 'cases.png') });
    });
  } finally {
    if (app) {
      if (app.logs.some((l) => /page error/.test(l))) console.error(app.logs.join('\n'));
      await app.close();
    }
    (headless as ChildProcess | null)?.kill();
    await federation?.server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function sliceIndex(text: string): number {
  const m = /slice (\d+) \//.exec(text);
  assert.ok(m, `slice number shown: ${text}`);
  return Number(m[1]);
}
