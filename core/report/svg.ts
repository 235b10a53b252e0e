/** Self-contained inline SVG charts (no scripts, no external fonts) for report.html. */

export interface Series { name: string; colour: string; values: Array<number | null>; dashed?: boolean }

const WIDTH = 560;
const HEIGHT = 260;
const PAD = { left: 46, right: 130, top: 26, bottom: 38 };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Line chart of values in [0, yMax] against x labels (rounds), with a legend on the right. */
export function lineChart(title: string, xLabels: string[], series: Series[], yLabel = 'Dice', yMax = 1): string {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (xLabels.length <= 1 ? plotW / 2 : (plotW * i) / (xLabels.length - 1));
  const y = (v: number) => PAD.top + plotH * (1 - Math.min(Math.max(v / yMax, 0), 1));
  const parts = [frame(title, yLabel, plotW, plotH, y, yMax)];
  xLabels.forEach((label, i) => parts.push(`<text x="${x(i).toFixed(1)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle" class="tick">${escapeXml(label)}</text>`));
  series.forEach((s, n) => {
    const points = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`));
    const segments = points.reduce<string[][]>((acc, p) => {
      if (p === null) acc.push([]);
      else acc[acc.length - 1].push(p);
      return acc;
    }, [[]]);
    for (const seg of segments.filter((sg) => sg.length > 1)) {
      parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''} points="${seg.join(' ')}"/>`);
    }
    for (const p of points) if (p) parts.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${s.colour}"/>`);
    parts.push(legendEntry(n, s));
  });
  return svg(title, parts);
}

/** Grouped bar chart: one group per category (e.g. region), one bar per series (e.g. method). */
export function barChart(title: string, categories: string[], series: Series[], yLabel = 'Dice'): string {
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const y = (v: number) => PAD.top + plotH * (1 - Math.min(Math.max(v, 0), 1));
  const groupW = plotW / Math.max(categories.length, 1);
  const barW = (groupW * 0.8) / Math.max(series.length, 1);
  const parts = [frame(title, yLabel, plotW, plotH, y)];
  categories.forEach((category, c) => {
    const groupLeft = PAD.left + groupW * c + groupW * 0.1;
    parts.push(`<text x="${(groupLeft + groupW * 0.4).toFixed(1)}" y="${HEIGHT - PAD.bottom + 16}" text-anchor="middle" class="tick">${escapeXml(category)}</text>`);
    series.forEach((s, n) => {
      const v = s.values[c];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const top = y(v);
      parts.push(`<rect x="${(groupLeft + barW * n).toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(PAD.top + plotH - top).toFixed(1)}" fill="${s.colour}"><title>${escapeXml(`${s.name} ${category}: ${v.toFixed(3)}`)}</title></rect>`);
    });
  });
  series.forEach((s, n) => parts.push(legendEntry(n, s)));
  return svg(title, parts);
}

function frame(title: string, yLabel: string, plotW: number, plotH: number, y: (v: number) => number, yMax = 1): string {
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax).map((v) =>
    `<line x1="${PAD.left}" x2="${PAD.left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/>`
    + `<text x="${PAD.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" class="tick">${yMax > 10 ? v.toFixed(0) : v.toFixed(2)}</text>`).join('');
  return `<text x="${PAD.left}" y="16" class="title">${escapeXml(title)}</text>${grid}`
    + `<text transform="translate(12 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle" class="tick">${escapeXml(yLabel)}</text>`;
}

function legendEntry(n: number, s: Series): string {
  const lx = WIDTH - PAD.right + 12;
  const ly = PAD.top + 8 + n * 18;
  return `<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${s.colour}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`
    + `<text x="${lx + 24}" y="${ly + 4}" class="tick">${escapeXml(s.name)}</text>`;
}

function svg(title: string, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeXml(title)}">${parts.join('')}</svg>`;
}
