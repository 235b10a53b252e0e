/**
 * The site admin's decision per round: the federation and round, the training asked for, and exactly what
 * would leave the site, message by message and key by key (site/outgoing.ts builds this list from the same
 * code as the messages), then Approve, or Decline with a reason that is sent and audited.
 */
import { useEffect, useState } from 'react';
import type { ApprovalInfo, OutgoingMessagePlan } from '../../preload/api.js';
import { PrivacyFacts } from '../components/PrivacyFacts.js';
import { api } from '../api.js';
import { formatBytes, formatDuration, formatTime } from '../format.js';
import { useUi } from '../store.js';

/** Plain words for the fields and metric keys a message can carry. */
const FIELD_TEXT: Record<string, string> = {
  weights: 'the locally trained model weights', numCases: 'the number of cases', trainingSeconds: 'training time in seconds',
  norm: 'the size of the update (L2 norm)', epoch: 'the current epoch', epochs: 'the number of epochs', loss: 'the current training loss',
  'metrics.loss': 'mean training loss', 'metrics.steps': 'training steps', 'metrics.seconds': 'training seconds',
};

function fieldText(field: string): string {
  const known = FIELD_TEXT[field];
  if (known) return known;
  const m = /^metrics\.(dice|hd95)_(ET|TC|WT)$/.exec(field);
  if (m) return `mean ${m[1] === 'dice' ? 'Dice' : 'HD95 (mm)'} of ${m[2]} over the cases`;
  return field.replace(/^metrics\./, 'metric ');
}

const MESSAGE_TEXT: Record<OutgoingMessagePlan['message'], string> = {
  update: 'After local training, once',
  progress: 'While training, about once a second',
  evaluation: 'After every completed round, whether or not you approve: the new global model scored on the held-out cases',
};

function OutgoingMessage({ plan, approval }: { plan: OutgoingMessagePlan; approval: ApprovalInfo }) {
  return (
    <li data-testid={`outgoing-${plan.message}`}>
      <b>{MESSAGE_TEXT[plan.message]}</b>
      {plan.numCases !== null && <> (describing <span data-testid={`outgoing-${plan.message}-cases`}>{plan.numCases}</span> cases)</>}:
      <ul className="fields">
        {plan.fields.map((field) => (
          <li key={field}>
            <code data-key={field}>{field}</code> {fieldText(field)}
            {(field === 'weights' || field === 'maskedWeights') && <> ({approval.model.parameterCount.toLocaleString()} float32 parameters, {formatBytes(approval.model.updateBytes)})</>}
          </li>
        ))}
      </ul>
      {plan.withheld.length > 0 && (
        <p className="hint" data-testid={`withheld-${plan.message}`}>
          Not sent, because they would describe fewer than {approval.minMetricCases} cases: {plan.withheld.join(', ')}.
        </p>
      )}
    </li>
  );
}

export function ApprovalScreen() {
  const app = useUi((s) => s.app);
  const run = useUi((s) => s.run);
  const setApp = useUi((s) => s.setApp);
  const [reason, setReason] = useState('');
  const now = useNow();
  if (!app) return null;
  const round = app.pendingRound;
  const approval = round?.approval ?? null;
  const isAdmin = app.role === 'admin';
  const decisions = app.audit.flatMap((a) => (a.kind === 'round-decision' ? [a] : []));
  const sent = app.audit.flatMap((a) => (a.kind === 'update-sent' ? [a] : []));

  const decide = async (approve: boolean) => {
    if (!round) return;
    const next = await run(approve ? 'Approving' : 'Declining', () => api().decideRound({ round: round.round, approve, ...(approve ? {} : { reason: reason.trim() }) }),
      approve ? `Round ${round.round} approved: local training starts.` : undefined);
    if (!next) return;
    setApp(next);
    setReason('');
    if (!approve) useUi.setState({ notice: `Round ${round.round} declined: this site sits it out. The reason was sent to the server.`, noticeTone: 'info' });
  };

  return (
    <section className="screen" data-testid="screen-approval">
      <h1>Round approval</h1>
      {!round ? (
        <div className="card"><p className="hint" data-testid="no-pending">No round is waiting for a decision.</p></div>
      ) : (
        <div className="card approval" data-testid="pending-round">
          <h2>
            Round {round.round}{approval && <> of {approval.totalRounds}</>} is waiting for your decision
            {approval && <span className="badge" data-testid="attempt">attempt {approval.attempt}</span>}
          </h2>
          {approval?.retryNote && <p className="hint" data-testid="retry-note">{approval.retryNote}</p>}
          <dl className="facts" data-testid="round-facts">
            <dt>Federation</dt><dd data-testid="federation-server">{app.connection.serverUrl ?? '—'}{app.connection.siteName && <> as site <b>{app.connection.siteName}</b></>}</dd>
            <dt>Decide by</dt>
            <dd>{formatTime(round.deadline)}{round.deadline && <> ({formatDuration((Date.parse(round.deadline) - now) / 1000)} left); without a decision the site is left out</>}</dd>
            {approval && (
              <>
                <dt>Model</dt>
                <dd>{approval.model.arch}, base filters {approval.model.baseFilters}, depth {approval.model.depth}; aggregated by {approval.strategy}</dd>
                <dt>Training</dt>
                <dd data-testid="training-parameters">
                  {approval.instructions.epochs} epoch(s), batch size {approval.instructions.batchSize}, learning rate {approval.instructions.learningRate}
                  {approval.instructions.mu > 0 ? `, FedProx μ ${approval.instructions.mu}` : ''}, seed {approval.instructions.seed};
                  on <b data-testid="outgoing-cases">{approval.trainingCases}</b> training case(s); at most {formatDuration(approval.trainingDeadlineS)}
                </dd>
                {approval.privacy && <PrivacyFacts privacy={approval.privacy} siteNoiseStd={approval.siteNoiseStd} />}
              </>
            )}
          </dl>
          <h3>What leaves the site</h3>
          {approval ? (
            <ul className="outgoing" data-testid="outgoing">
              {approval.outgoing.map((plan) => <OutgoingMessage key={plan.message} plan={plan} approval={approval} />)}
              <li className="muted">Already sent when connecting: the numbers of training ({approval.trainingCases}) and held-out ({approval.validationCases}) cases, and the software name.</li>
            </ul>
          ) : <p className="hint">The app has no description of this round.</p>}
          {approval && approval.serverDescription.length > 0 && (
            <div className="muted" data-testid="server-description">Server's description: {approval.serverDescription.join('; ')}.</div>
          )}
          <p className="never">Never sent: images, masks, file names, case ids, patient identifiers or NIfTI header text.</p>
          <div className="row">
            <button className="primary" disabled={!isAdmin} onClick={() => void decide(true)} data-testid="approve">Approve</button>
          </div>
          <div className="row">
            <label htmlFor="decline-reason" className="muted">Reason to decline (sent to the server)</label>
            <input
              id="decline-reason" className="grow" data-testid="decline-reason" value={reason} maxLength={500} disabled={!isAdmin}
              placeholder="e.g. cases still under review" onChange={(e) => setReason(e.target.value)}
            />
            <button className="danger" disabled={!isAdmin || reason.trim() === ''} onClick={() => void decide(false)} data-testid="decline">Decline</button>
          </div>
          {!isAdmin && <p className="hint" data-testid="reviewer-hint">Reviewers cannot approve rounds. Unlock admin mode with the admin passphrase (top right).</p>}
        </div>
      )}
      <div className="card">
        <h2>Local audit of decisions</h2>
        {decisions.length === 0 ? <p className="hint">No decisions yet.</p> : (
          <table className="table" data-testid="audit">
            <thead><tr><th>When</th><th>Round</th><th>Decision</th><th>By</th><th>Reason</th><th>Update sent (SHA-256)</th><th>Server</th></tr></thead>
            <tbody>
              {[...decisions].reverse().map((a) => {
                const update = sent.find((u) => u.round === a.round && a.decision === 'approved');
                return (
                  <tr key={`${a.at}-${a.round}`}>
                    <td>{formatTime(a.at)}</td><td>{a.round}{a.attempt && a.attempt > 1 ? ` (attempt ${a.attempt})` : ''}</td>
                    <td className={`decision-${a.decision}`}>{a.decision}</td><td>{a.by ?? '—'}</td><td>{a.reason ?? ''}</td>
                    <td><code title={update?.sha256}>{update ? update.sha256.slice(0, 16) : '—'}</code></td><td>{a.serverUrl}</td>
                  </tr>
                );
              })}
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
