/** The site admin's decision per round: exactly what would leave the site, then Approve or Decline. */
import { useEffect, useState } from 'react';
import { api } from '../api.js';
import { formatBytes, formatDuration, formatTime } from '../format.js';
import { useUi } from '../store.js';

export function ApprovalScreen() {
  const app = useUi((s) => s.app);
  const run = useUi((s) => s.run);
  const setApp = useUi((s) => s.setApp);
  const now = useNow();
  if (!app) return null;
  const round = app.pendingRound;
  const decisions = app.audit.flatMap((a) => (a.kind === 'round-decision' ? [a] : []));
  const isAdmin = app.role === 'admin';

  const decide = async (approve: boolean) => {
    if (!round) return;
    const next = await run(approve ? 'Approving' : 'Declining', () => api().decideRound({ round: round.round, approve }),
      approve ? `Round ${round.round} approved: local training starts.` : `Round ${round.round} declined: this site sits it out.`);
    if (next) setApp(next);
  };

  return (
    <section className="screen" data-testid="screen-approval">
      <h1>Round approval</h1>
      {!round ? (
        <div className="card"><p className="hint" data-testid="no-pending">No round is waiting for a decision.</p></div>
      ) : (
        <div className="card approval" data-testid="pending-round">
          <h2>Round {round.round} is waiting for your decision</h2>
          <p>
            Decide by <b>{formatTime(round.deadline)}</b>
            {round.deadline && <> ({formatDuration((Date.parse(round.deadline) - now) / 1000)} left)</>}.
            Without a decision the site is left out of this round.
          </p>
          <h3>If you approve, this leaves the site</h3>
          <ul className="outgoing" data-testid="outgoing">
            <li>The updated model weights ({round.outgoing?.parameterCount?.toLocaleString() ?? 'unknown number of'} parameters, {formatBytes(round.outgoing?.bytes ?? null)})</li>
            <li>The number of cases trained on: <b data-testid="outgoing-cases">{round.outgoing?.caseCount ?? 0}</b></li>
            <li>Aggregate training numbers: loss, Dice per region (ET, TC, WT) over the held-out cases, training steps and seconds</li>
            <li>While training: the epoch and the loss, about once a second</li>
            {round.outgoing?.items.map((item) => <li key={item} className="muted">Server's description: {item}</li>)}
          </ul>
          <p className="hint" data-testid="outgoing-always">
            Whether or not you approve: after every completed round this site sends the new global model's loss and Dice
            per region over its held-out cases, with their number. When connecting it sent its numbers of training and held-out cases.
          </p>
          <p className="never">Never sent: images, masks, file names, patient identifiers or NIfTI header text.</p>
          <div className="row">
            <button className="primary" disabled={!isAdmin} onClick={() => void decide(true)} data-testid="approve">Approve</button>
            <button className="danger" disabled={!isAdmin} onClick={() => void decide(false)} data-testid="decline">Decline</button>
          </div>
          {!isAdmin && <p className="hint" data-testid="reviewer-hint">Reviewers cannot approve rounds. Unlock admin mode with the admin passphrase (top right).</p>}
        </div>
      )}
      <div className="card">
        <h2>Local audit of decisions</h2>
        {decisions.length === 0 ? <p className="hint">No decisions yet.</p> : (
          <table className="table" data-testid="audit">
            <thead><tr><th>When</th><th>Round</th><th>Decision</th><th>Cases</th><th>Server</th></tr></thead>
            <tbody>
              {[...decisions].reverse().map((a) => (
                <tr key={`${a.at}-${a.round}`}><td>{formatTime(a.at)}</td><td>{a.round}</td><td className={`decision-${a.decision}`}>{a.decision}</td><td>{a.caseCount}</td><td>{a.serverUrl}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}
