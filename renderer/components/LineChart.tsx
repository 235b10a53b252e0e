/** Dependency-free SVG line chart for the loss curve and the per-round metrics. */
export interface LineSeries { name: string; color: string; points: Array<{ x: number; y: number }> }

interface Props { series: LineSeries[]; width?: number; height?: number; xLabel: string; yLabel: string; yMin?: number; yMax?: number; testId?: string }

export function LineChart({ series, width = 560, height = 220, xLabel, yLabel, yMin, yMax, testId }: Props) {
  const pad = { left: 60, right: 12, top: 12, bottom: 34 };
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  if (all.length === 0) return <div className="chart-empty" data-testid={testId}>No data yet.</div>;
  const x0 = Math.min(...all.map((p) => p.x));
  const x1 = Math.max(...all.map((p) => p.x), x0 + 1);
  const lo = yMin ?? Math.min(...all.map((p) => p.y));
  const hi = yMax ?? Math.max(...all.map((p) => p.y));
  const y1 = hi > lo ? hi : lo + 1;
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - ((y - lo) / (y1 - lo)) * (height - pad.top - pad.bottom);
  const ticks = [lo, (lo + y1) / 2, y1];
  return (
    <svg className="chart" width={width} height={height} data-testid={testId} role="img" aria-label={`${yLabel} by ${xLabel}`}>
      <rect x={pad.left} y={pad.top} width={width - pad.left - pad.right} height={height - pad.top - pad.bottom} className="chart-frame" />
      {ticks.map((t) => (
        <g key={t}>
          <line x1={pad.left} x2={width - pad.right} y1={sy(t)} y2={sy(t)} className="chart-grid" />
          <text x={pad.left - 6} y={sy(t) + 4} textAnchor="end" className="chart-tick">{t.toPrecision(3)}</text>
        </g>
      ))}
      <text x={(width + pad.left) / 2} y={height - 6} textAnchor="middle" className="chart-label">{xLabel}</text>
      <text x={12} y={height / 2} textAnchor="middle" className="chart-label" transform={`rotate(-90 12 ${height / 2})`}>{yLabel}</text>
      {series.map((s) => {
        const pts = s.points.filter((p) => Number.isFinite(p.y));
        return (
          <g key={s.name}>
            <polyline fill="none" stroke={s.color} strokeWidth={2} points={pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')} />
            {pts.length <= 30 && pts.map((p) => <circle key={`${p.x}`} cx={sx(p.x)} cy={sy(p.y)} r={3} fill={s.color} />)}
          </g>
        );
      })}
      {series.length > 1 && series.map((s, i) => (
        <text key={s.name} x={pad.left + 8 + i * 70} y={pad.top + 14} fill={s.color} className="chart-legend">{s.name}</text>
      ))}
    </svg>
  );
}
