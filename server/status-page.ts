/** The operator's read-only status page: server-rendered HTML with an inline SVG chart, refreshed every 5 s. */
import { regionMetricKey } from '../core/metrics/regions.js';
import type { PrivacySpent } from '../core/privacy/budget.js';
import type { RoundMetrics } from './metrics-summary.js';
import type { Waiting } from './waiting.js';

export interface StatusView {
  state: string;
  totalRounds: number;
  completedRounds: number;
  current: {
    round: number; attempt: number; phase: string; deadline: string; approvals: Record<string, string>; participants: string[]; returned: string[];
    progress: Record<string, { epoch: number; epochs: number; loss?: number }>;
  } | null;
  sites: {
    name: string; online: boolean; declaredTrain: number | null; registeredCases: number | null; lastSeen: string | null; bytesSent: number | null; bytesReceived: number | null;
    /** Set when the site's recent updates were clipped or rejected again and again (Store.flaggedSites). */
    flag: { clipped: number; rejected: number; of: number } | null;
  }[];
  rounds: { round: number; attempt: number; status: string; sites_returned: number | null; num_cases: number | null; reason: string | null; ended_at: string | null }[];
  globalMetrics: RoundMetrics[];
  strategy: string;
  /** What the federation waits for right now, if anything. */
  waiting: Waiting | null;
  /** Why the federation ended before its last round (the privacy budget); null otherwise. */
  endReason: string | null;
  /** Differential privacy: settings and epsilon spent by the released models; null without DP. */
  privacy: PrivacySpent | null;
}

const escape = (s: unknown): string => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
const CHART_SERIES = [
  { key: regionMetricKey('dice', 'WT'), label: 'WT Dice', colour: '#2a9d8f' },
  { key: regionMetricKey('dice', 'TC'), label: 'TC Dice', colour: '#264653' },
  { key: regionMetricKey('dice', 'ET'), label: 'ET Dice', colour: '#e9c46a' },
];

/** Line chart of the global Dice per round (0..1 y axis). */
export function metricsChart(rounds: readonly RoundMetrics[]): string {
  const w = 560;
  const h = 220;
  const pad = 36;
  if (rounds.length === 0) return '<p>No global metrics yet: sites report them after evaluating each new global model.</p>';
  const maxRound = Math.max(1, ...rounds.map((r) => r.round));
  const x = (r: number) => pad + ((w - 2 * pad) * (r - 1)) / Math.max(1, maxRound - 1);
  const y = (v: number) => h - pad - (h - 2 * pad) * Math.min(1, Math.max(0, v));
  const grid = [0, 0.25, 0.5, 0.75, 1].map((v) => `<line x1="${pad}" x2="${w - pad}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="4" y="${y(v) + 4}" font-size="10">${v}</text>`).join('');
  const series = CHART_SERIES.map(({ key, colour }) => {
    const points = rounds.filter((r) => Number.isFinite(r.metrics[key])).map((r) => `${x(r.round).toFixed(1)},${y(r.metrics[key]).toFixed(1)}`);
    if (points.length === 0) return '';
    return `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.join(' ')}"/>` +
      points.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${colour}"/>`).join('');
  }).join('');
  const legend = CHART_SERIES.map(({ label, colour }, i) => `<text x="${pad + i * 90}" y="14" font-size="11" fill="${colour}">■ ${label}</text>`).join('');
  const xTicks = rounds.map((r) => `<text x="${x(r.round) - 3}" y="${h - pad + 14}" font-size="10">${r.round}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="Global Dice per round">${grid}${series}${legend}${xTicks}<text x="${w / 2 - 15}" y="${h - 4}" font-size="10">round</text></svg>`;
}

export function renderStatusPage(v: StatusView): string {
  const c = v.current;
  const online = v.sites.filter((s) => s.online).length;
  const roundLine = c
    ? `Round ${c.round} of ${v.totalRounds} (attempt ${c.attempt}), phase <b>${escape(c.phase)}</b>, deadline ${escape(c.deadline)}. ` +
      `<b>${c.returned.length} of ${c.participants.length || Object.keys(c.approvals).length} sites returned</b>.`
    : `${escape(v.state)}: ${v.completedRounds} of ${v.totalRounds} rounds completed.`;
  const siteRows = v.sites.map((s) => {
    const approval = c?.approvals[s.name] ?? (c ? 'waiting' : '');
    const p = c?.progress[s.name];
    const returned = c?.returned.includes(s.name) ? 'returned' : c?.participants.includes(s.name) ? `training${p ? ` (epoch ${p.epoch}/${p.epochs})` : ''}` : '';
    const traffic = s.bytesSent === null ? '' : `${(s.bytesSent / 1e6).toFixed(2)} / ${((s.bytesReceived ?? 0) / 1e6).toFixed(2)}`;
    const flag = s.flag ? `<td class="flag">⚠ ${s.flag.clipped} clipped, ${s.flag.rejected} rejected of last ${s.flag.of} updates</td>` : '<td></td>';
    return `<tr><td>${escape(s.name)}</td><td>${s.online ? '🟢 online' : '⚪ offline'}</td><td>${s.declaredTrain ?? ''}</td><td>${s.registeredCases ?? 'not registered'}</td>${flag}<td>${escape(approval)}</td><td>${escape(returned)}</td><td>${traffic}</td><td>${escape(s.lastSeen ?? '')}</td></tr>`;
  }).join('');
  const metricsByRound = new Map(v.globalMetrics.map((m) => [m.round, m]));
  const fmt = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '' : n.toFixed(3));
  const roundRows = v.rounds.filter((r) => r.round > 0).map((r) => {
    const m = metricsByRound.get(r.round)?.metrics ?? {};
    const ok = r.status === 'completed';
    return `<tr><td>${r.round}</td><td>${r.attempt}</td><td>${escape(r.status)}</td><td>${r.sites_returned ?? ''}</td><td>${r.num_cases ?? ''}</td>` +
      (['WT', 'TC', 'ET'] as const).map((region) => `<td>${ok ? fmt(m[regionMetricKey('dice', region)]) : ''}</td>`).join('') +
      `<td>${escape(r.reason ?? '')}</td><td>${ok ? `<a href="/api/rounds/${r.round}/model">model</a>` : ''}</td></tr>`;
  }).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>FedSeg aggregation server</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f4f4f4}.flag{background:#fde2e1;color:#8a1c13}</style>
</head><body><h1>FedSeg aggregation server</h1>
<p>${roundLine} Strategy: ${escape(v.strategy)}. Sites online: ${online} of ${v.sites.length}.</p>
${v.endReason ? `<p id="end-reason" style="background:#fde2e1;padding:6px 10px"><b>Ended: ${escape(v.endReason)}</b></p>` : ''}
${v.privacy ? `<p id="privacy">Differential privacy (${escape(v.privacy.mode)}): clip ${v.privacy.clip}, noise multiplier ${v.privacy.noiseMultiplier}; epsilon spent <b>${v.privacy.epsilonSpent.toFixed(3)}</b> at delta ${v.privacy.delta} of the budget ${v.privacy.budget.epsilon} at delta ${v.privacy.budget.delta}.</p>` : ''}
${v.waiting ? `<p id="waiting" style="background:#fff3cd;padding:6px 10px"><b>Now ${escape(v.waiting.message)}</b></p>` : ''}
<h2>Sites</h2><table><tr><th>site</th><th>connection</th><th>training cases (declared)</th><th>registered cases (cap)</th><th>updates</th><th>approval</th><th>update</th><th>MB to / from site</th><th>last seen</th></tr>${siteRows}</table>
<h2>Global metrics per round</h2>${metricsChart(v.globalMetrics)}
<h2>Rounds</h2><table><tr><th>round</th><th>attempt</th><th>status</th><th>sites returned</th><th>cases</th><th>WT</th><th>TC</th><th>ET</th><th>note</th><th></th></tr>${roundRows}</table>
<p><a href="/api/audit">audit log (JSON)</a></p></body></html>`;
}
