/** report.html: one self-contained page (inline CSS, SVG charts, base64 PNG) describing a demo run. */
import type { DemoReport, RegionDice } from './schema.js';
import { barChart, escapeXml, lineChart, type Series } from './svg.js';
import { formatBaselineTable, formatRoundTable } from './table.js';

const REGION_COLOURS: Record<keyof RegionDice, string> = { ET: '#d4a300', TC: '#2a5bd7', WT: '#1f9d48' };
const SITE_COLOURS = ['#7b3fa0', '#d7522a', '#2a9dd7', '#5a8f29', '#c2185b', '#6d4c41', '#00897b', '#3949ab'];
const REGIONS = ['ET', 'TC', 'WT'] as const;

export function renderReportHtml(report: DemoReport, slicePng?: Uint8Array): string {
  const roundLabels = report.rounds.map((r) => `r${r.round}`);
  const globalChart = lineChart('Global model Dice per round (mean of sites\' held-out cases)', roundLabels,
    REGIONS.map((region) => ({ name: region, colour: REGION_COLOURS[region], values: report.rounds.map((r) => r.dice[region]) })));
  const siteCharts = REGIONS.map((region) => lineChart(`${region} Dice per site and round (global model)`, roundLabels,
    report.settings.sites.map((site, n): Series => ({
      name: site,
      colour: SITE_COLOURS[n % SITE_COLOURS.length],
      values: report.rounds.map((r) => r.perSite[site]?.[region] ?? null),
    }))));
  const hd95Values = report.rounds.flatMap((r) => REGIONS.map((region) => r.hd95?.[region] ?? null)).filter((v): v is number => v !== null && Number.isFinite(v));
  const hd95Chart = hd95Values.length === 0 ? '' : lineChart('Global model HD95 per round (mm, lower is better)', roundLabels,
    REGIONS.map((region) => ({ name: region, colour: REGION_COLOURS[region], values: report.rounds.map((r) => r.hd95?.[region] ?? null) })),
    'HD95 mm', niceAxisMax(Math.max(...hd95Values)));
  const last = report.rounds[report.rounds.length - 1];
  const sections = [
    `<h1>FedSeg federated demo</h1>`,
    `<p class="meta">${escapeXml(`${report.settings.sites.length} sites, ${report.rounds.length} rounds, ${report.settings.model}, backend ${report.backend}, ${report.totalSeconds.toFixed(0)} s in total, ${report.createdAt}`)}</p>`,
    report.machine ? `<p class="meta">${escapeXml(`${report.machine.cpus} x ${report.machine.cpuModel}; 1-minute load average ${report.machine.loadAverageStart.toFixed(1)} at start, ${report.machine.loadAverageEnd.toFixed(1)} at the end`)}</p>` : '',
    `<h2>Setup</h2>`,
    `<p>${escapeXml(report.settings.reducedSize)}</p>`,
    siteSetupTable(report),
    `<h2>Rounds</h2>`,
    `<pre>${escapeXml(formatRoundTable(report.rounds, report.settings.sites.length))}</pre>`,
    `<div class="charts">${globalChart}${hd95Chart}</div>`,
    `<h2>Per site</h2>`,
    `<div class="charts">${siteCharts.join('')}</div>`,
  ];
  if (report.baselines && last) {
    const b = report.baselines;
    sections.push(
      `<h2>Federated against baselines</h2>`,
      `<p>${escapeXml(`Same train/held-out split and the same optimiser budget: ${b.budget}. Baselines took ${b.seconds.toFixed(0)} s.`)}</p>`,
      `<pre>${escapeXml(formatBaselineTable(last.dice, b))}</pre>`,
      barChart('Held-out Dice: federated vs local-only vs centralised', [...REGIONS], [
        { name: 'federated', colour: '#2a5bd7', values: REGIONS.map((r) => last.dice[r]) },
        { name: 'local-only', colour: '#d7522a', values: REGIONS.map((r) => b.localOnlyMean[r]) },
        { name: 'centralised', colour: '#1f9d48', values: REGIONS.map((r) => b.centralisedMean[r]) },
      ]),
      barChart('WT Dice per site', report.settings.sites, [
        { name: 'federated', colour: '#2a5bd7', values: report.settings.sites.map((s) => last.perSite[s]?.WT ?? null) },
        { name: 'local-only', colour: '#d7522a', values: report.settings.sites.map((s) => b.localOnly[s]?.WT ?? null) },
        { name: 'centralised', colour: '#1f9d48', values: report.settings.sites.map((s) => b.centralised[s]?.WT ?? null) },
      ]),
    );
  }
  if (slicePng) {
    sections.push(
      `<h2>Prediction</h2>`,
      `<figure><img alt="axial slice with masks overlaid" src="data:image/png;base64,${Buffer.from(slicePng).toString('base64')}"/>`
      + `<figcaption>${escapeXml(report.sliceCaption ?? '')} Colours: <span style="color:#285aff">1 necrotic/non-enhancing core (blue)</span>, <span style="color:#1ec83c">2 edema (green)</span>, <span style="color:#b39e00">4 enhancing tumour (yellow)</span>.</figcaption></figure>`,
    );
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>FedSeg demo report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; padding: 0 16px; }
h1 { margin-bottom: 4px; } .meta { color: #666; margin-top: 0; }
pre { background: #f5f5f7; padding: 10px 12px; border-radius: 6px; overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ddd; padding: 3px 10px; text-align: right; } th:first-child, td:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg .title { font-weight: 600; font-size: 13px; } svg .tick { font-size: 11px; fill: #444; } svg .grid { stroke: #e3e3e3; }
figure { margin: 0; } img { image-rendering: pixelated; max-width: 100%; }
</style></head><body>
${sections.join('\n')}
</body></html>
`;
}

function siteSetupTable(report: DemoReport): string {
  const rows = report.settings.sites.map((site) => `<tr><td>${escapeXml(site)}</td><td>${report.settings.trainCasesPerSite[site] ?? 0}</td><td>${report.settings.heldOutCasesPerSite[site] ?? 0}</td></tr>`);
  return `<table><tr><th>site</th><th>training cases</th><th>held-out cases</th></tr>${rows.join('')}</table>`;
}

/** Axis top with round quarter ticks: a multiple of 100 mm above 100, of 20 mm below. */
function niceAxisMax(max: number): number {
  const unit = max > 100 ? 100 : 20;
  return Math.max(unit, Math.ceil(max / unit) * unit);
}
