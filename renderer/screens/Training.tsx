/** Local training progress (epochs, ETA, loss curve), global metrics per round and the backend in use. */
import { LineChart } from '../components/LineChart.js';
import { formatDuration, formatScore } from '../format.js';
import { useUi } from '../store.js';

export function TrainingScreen() {
  const app = useUi((s) => s.app);
  const progress = useUi((s) => s.progress);
  if (!app) return null;
  const done = progress?.fraction ?? 0;
  const loss = thin(app.lossHistory.map((p, i) => ({ x: i + 1, y: p.loss })), 400);
  const scored = app.rounds.filter((r) => r.globalDice);
  return (
    <section className="screen" data-testid="screen-training">
      <h1>Training</h1>
      <div className="card">
        <h2>Local training</h2>
        <p>Backend: <b data-testid="backend">{app.backend ? `${app.backend.name} (${app.backend.gpu ? 'GPU' : 'CPU'})` : 'not started yet'}</b></p>
        {progress ? (
          <>
            <div className="progress" data-testid="progress"><div className="progress-fill" style={{ width: `${Math.round(done * 100)}%` }} /></div>
            <p data-testid="progress-text">
              Round {progress.round}: epoch {progress.epoch} of {progress.epochs}
              {progress.steps > 0 && `, step ${progress.step} of ${progress.steps}`}
              {' · '}{Math.round(done * 100)} %{' · '}loss {Number.isFinite(progress.loss) ? progress.loss.toFixed(4) : '—'}
              {' · '}{done >= 1 ? 'done' : `about ${formatDuration(progress.etaSeconds)} left`}
            </p>
          </>
        ) : <p className="hint">No local training is running.</p>}
        <h3>Loss</h3>
        <LineChart testId="loss-chart" series={[{ name: 'loss', color: '#f0a04b', points: loss }]} xLabel="training step" yLabel="loss" />
      </div>
      <div className="card">
        <h2>Global model per round</h2>
        <LineChart
          testId="metrics-chart"
          yMin={0}
          yMax={1}
          xLabel="round"
          yLabel="Dice on this site's held-out cases"
          series={[
            { name: 'WT', color: '#4caf50', points: scored.map((r) => ({ x: r.round, y: r.globalDice!.wt })) },
            { name: 'TC', color: '#4f8cff', points: scored.map((r) => ({ x: r.round, y: r.globalDice!.tc })) },
            { name: 'ET', color: '#e6d400', points: scored.map((r) => ({ x: r.round, y: r.globalDice!.et })) },
          ]}
        />
        {scored.length > 0 && (
          <table className="table" data-testid="metrics-table">
            <thead><tr><th>Round</th><th>ET</th><th>TC</th><th>WT</th></tr></thead>
            <tbody>{scored.map((r) => <tr key={r.round}><td>{r.round}</td><td>{formatScore(r.globalDice!.et)}</td><td>{formatScore(r.globalDice!.tc)}</td><td>{formatScore(r.globalDice!.wt)}</td></tr>)}</tbody>
          </table>
        )}
      </div>
    </section>
  );
}

/** Keeps every n-th point so long runs still draw quickly. */
function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const every = Math.ceil(points.length / max);
  return points.filter((_, i) => i % every === 0 || i === points.length - 1);
}
