import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import {
  axialSlice, crc32, DemoReportSchema, encodePng, formatRoundTable, largestTumourSlice, renderPanels, renderReportHtml, type DemoReport,
} from '../../core/report/index.js';

function fakeReport(withBaselines: boolean): DemoReport {
  const sites = ['site-1', 'site-2', 'site<3>'];
  const rounds = [1, 2, 3].map((round) => ({
    round,
    sitesReturned: round === 2 ? sites.slice(0, 2) : sites,
    dice: { ET: 0.1 * round, TC: 0.15 * round, WT: 0.2 * round },
    hd95: { ET: 40 / round, TC: 30 / round, WT: round === 1 ? null : 20 / round },
    perSite: Object.fromEntries(sites.map((s, n) => [s, { ET: 0.1 * round, TC: 0.15 * round, WT: 0.2 * round + 0.01 * n, cases: 2 }])),
    seconds: 10 + round,
  }));
  const perSite = (v: number) => Object.fromEntries(sites.map((s) => [s, { ET: v, TC: v, WT: v, cases: 2 }]));
  return DemoReportSchema.parse({
    createdAt: '2026-11-26T20:00:00.000Z',
    outDir: '/tmp/demo',
    backend: 'cpu',
    settings: {
      sites, rounds: 3, model: 'unet', casesPerSite: 6, trainCasesPerSite: perSiteCount(sites, 4), heldOutCasesPerSite: perSiteCount(sites, 2),
      reducedSize: '32^3 input, base filters 4', localEpochs: 1, seed: 7,
    },
    rounds,
    baselines: withBaselines ? { localOnly: perSite(0.3), localOnlyMean: { ET: 0.3, TC: 0.3, WT: 0.3 }, centralised: perSite(0.7), centralisedMean: { ET: 0.7, TC: 0.7, WT: 0.7 }, budget: '3 epochs', seconds: 20 } : undefined,
    totalSeconds: 40,
    sliceCaption: 'Case X, slice 70.',
  });
}

function perSiteCount(sites: string[], n: number) {
  return Object.fromEntries(sites.map((s) => [s, n]));
}

test('encodePng writes a valid PNG: signature, CRC-checked chunks, unfiltered rows that inflate to the pixels', () => {
  const width = 3;
  const height = 2;
  const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256);
  const png = encodePng(rgb, width, height);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks: Array<{ type: string; data: Buffer }> = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    assert.equal(png.readUInt32BE(at + 8 + length), crc32(png.subarray(at + 4, at + 8 + length)), `${type} CRC`);
    chunks.push({ type, data });
    at += 12 + length;
  }
  assert.deepEqual(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
  assert.equal(chunks[0].data.readUInt32BE(0), width);
  assert.equal(chunks[0].data.readUInt32BE(4), height);
  assert.deepEqual([...chunks[0].data.subarray(8)], [8, 2, 0, 0, 0]);
  const raw = inflateSync(chunks[1].data);
  assert.equal(raw.length, height * (width * 3 + 1));
  assert.equal(raw[0], 0);
  assert.deepEqual([...raw.subarray(1, 10)], [...rgb.subarray(0, 9)]);
  assert.deepEqual([...raw.subarray(11)], [...rgb.subarray(9)]);
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926); // the standard CRC-32 check value
  assert.throws(() => encodePng(new Uint8Array(5), 2, 1), RangeError);
});

test('renderPanels blends BraTS colours over grey and flips rows so anterior is up', () => {
  const intensity = Float32Array.from([0, 1, 2, 3]);
  const labels = Uint8Array.from([0, 4, 1, 2]);
  const image = renderPanels([{ intensity, width: 2, height: 2 }, { intensity, labels, width: 2, height: 2 }], 1, 1);
  assert.equal(image.width, 5);
  assert.equal(image.height, 2);
  const pixel = (x: number, y: number) => [...image.rgb.subarray((x + image.width * y) * 3, (x + image.width * y) * 3 + 3)];
  // Top row shows source row y = 1 (voxels 2 and 3); the gap column is white.
  assert.deepEqual(pixel(2, 0), [255, 255, 255]);
  const edema = pixel(4, 0); // label 2 -> green dominates
  assert.ok(edema[1] > edema[0] && edema[1] > edema[2], `edema ${edema}`);
  const core = pixel(3, 0); // label 1 -> blue dominates
  assert.ok(core[2] > core[0] && core[2] > core[1], `core ${core}`);
  const enhancing = pixel(4, 1); // label 4 -> yellow: red and green high, blue low
  assert.ok(enhancing[0] > enhancing[2] && enhancing[1] > enhancing[2], `enhancing ${enhancing}`);
  const background = pixel(0, 1); // intensity 0 without label: black grey
  assert.deepEqual(background, [0, 0, 0]);
});

test('slice helpers pick the slice with most tumour and extract it', () => {
  const dims = [2, 2, 3] as const;
  const labels = Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 2, 4, 1, 0]);
  assert.equal(largestTumourSlice(labels, dims), 2);
  assert.deepEqual([...axialSlice(labels, dims, 2)], [2, 4, 1, 0]);
});

test('formatRoundTable lists every round with sites returned and Dice', () => {
  const table = formatRoundTable(fakeReport(false).rounds, 3);
  const lines = table.split('\n');
  assert.match(lines[0], /^round +sites returned +ET Dice +TC Dice +WT Dice +round time +peak RSS server \/ largest site$/);
  assert.equal(lines.length, 5);
  assert.match(lines[3], /^2 +2 of 3 +0\.200 +0\.300 +0\.400 +12\.0 s +-$/, 'no memory figure where none was measured');
});

test('report.html is self-contained: inline SVG charts, embedded PNG, escaped names, baselines when present', () => {
  const png = encodePng(new Uint8Array(12), 2, 2);
  const html = renderReportHtml(fakeReport(true), png);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.equal((html.match(/<svg /g) ?? []).length, 1 + 1 + 3 + 2); // Dice, HD95, per site x3, baselines x2
  assert.match(html, /HD95 per round \(mm/);
  assert.match(html, />40<\/text>/); // the HD95 axis is in mm: top 40, ticks every 10
  assert.match(html, />10<\/text>/);
  assert.ok(html.includes(`data:image/png;base64,${png.toString('base64')}`));
  assert.ok(html.includes('site&lt;3&gt;') && !html.includes('site<3>'));
  assert.match(html, /local-only/);
  assert.match(html, /32\^3 input, base filters 4/);
  // Nothing is fetched from elsewhere: the only URLs are the SVG namespace.
  const urls = html.match(/(?:src|href)="(?!data:)[^"]*"/g) ?? [];
  assert.deepEqual(urls, []);
  assert.ok(!/<script/i.test(html));
  const plain = renderReportHtml(fakeReport(false));
  assert.equal((plain.match(/<svg /g) ?? []).length, 5);
  assert.ok(!plain.includes('<img'));
});
