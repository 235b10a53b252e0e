/** Connect to the aggregation server and follow the rounds: "k of n sites", this site's contribution. */
import { useState } from 'react';
import type { RoundRecord } from '../../preload/api.js';
import { api } from '../api.js';
import { formatScore, formatTime } from '../format.js';
import { useUi } from '../store.js';

const STATUS_TEXT: Record<RoundRecord['status'], string> = {
  announced: 'Waiting for approval', approved: 'Approved', declined: 'Declined', training: 'Training locally',
  sent: 'Update sent', accepted: 'Update accepted', rejected: 'Update rejected', 'left-out': 'Left out', complete: 'Complete',
};

export function FederationScreen() {
  const app = useUi((s) => s.app);
  const run = useUi((s) => s.run);
  const setApp = useUi((s) => s.setApp);
  const [url, setUrl] = useState<string | null>(null);
  const [token, setToken] = useState('');
  if (!app) return null;
  const serverUrl = url ?? app.saved.serverUrl ?? app.connection.serverUrl ?? '';
  const isAdmin = app.role === 'admin';
  const connected = app.connection.phase === 'connected' || app.connection.phase === 'connecting';

  const connect = async () => {
    const next = await run('Connecting', () => api().connect({ serverUrl, token: token || undefined }));
    if (next) {
      setApp(next);
      setToken('');
    }
  };
  const disconnect = async () => {
    const next = await run('Disconnecting', () => api().disconnect());
    if (next) setApp(next);
  };

  return (
    <section className="screen" data-testid="screen-federation">
      <h1>Federation</h1>
      <div className="card">
        <h2>Connection</h2>
        <div className="conn-state" data-testid="connection-state">
          <span className={`badge conn-${app.connection.phase}`}>{app.connection.phase}</span>
          {app.connection.phase === 'connected' && <span> as site <b data-testid="site-name">{app.connection.siteName}</b> to {app.connection.serverUrl}</span>}
          {app.connection.error && <span className="error-text" data-testid="connection-error"> {app.connection.error}</span>}
        </div>
        {app.connection.waiting && <p className="hint" data-testid="connection-waiting">{app.connection.waiting}</p>}
        <form className="form-grid" onSubmit={(e) => { e.preventDefault(); void connect(); }}>
          <label htmlFor="server-url">Server address</label>
          <input id="server-url" data-testid="server-url" value={serverUrl} placeholder="wss://federation.example.org:8443" onChange={(e) => setUrl(e.target.value)} disabled={!isAdmin || connected} />
          <label htmlFor="site-token">Site token</label>
          <input
            id="site-token" data-testid="site-token" type="password" value={token} autoComplete="off" disabled={!isAdmin || connected}
            placeholder={app.saved.hasToken ? 'saved (leave empty to reuse)' : 'token from the federation operator'}
            onChange={(e) => setToken(e.target.value)}
          />
          <span />
          <div className="row">
            {!connected && <button type="submit" className="primary" disabled={!isAdmin || !serverUrl} data-testid="connect">Connect</button>}
            {connected && <button type="button" onClick={() => void disconnect()} disabled={!isAdmin} data-testid="disconnect">Disconnect</button>}
          </div>
        </form>
        <p className="hint">
          {isAdmin ? '' : 'Only the site admin can connect or disconnect. '}
          {app.saved.hasToken && (app.saved.tokenEncrypted
            ? 'The site token is stored encrypted in the operating system keychain.'
            : 'The site token is stored unencrypted on this computer (no keychain available).')}
        </p>
      </div>

      <div className="card">
        <h2>Rounds</h2>
        {app.rounds.length === 0 ? <p className="hint">No rounds yet. Rounds appear here when the server announces them.</p> : (
          <table className="table" data-testid="rounds">
            <thead>
              <tr><th>Round</th><th>This site</th><th>Sites returned</th><th>Cases sent</th><th>Local loss</th><th>Global WT Dice</th><th>Note</th></tr>
            </thead>
            <tbody>
              {[...app.rounds].reverse().map((r) => (
                <tr key={r.round} data-testid={`round-${r.round}`} data-status={r.status}>
                  <td>{r.round}</td>
                  <td><span className={`status status-${r.status}`}>{STATUS_TEXT[r.status]}</span></td>
                  <td data-testid={`round-${r.round}-sites`}>{r.sitesReturned !== null ? `${r.sitesReturned} of ${r.sitesTotal ?? '?'} sites` : '—'}</td>
                  <td>{r.contribution ? r.contribution.caseCount : '—'}</td>
                  <td>{formatScore(r.contribution?.loss)}</td>
                  <td>{formatScore(r.globalDice?.wt)}</td>
                  <td className="muted">{r.reason ?? (r.deadline && r.status === 'announced' ? `decide by ${formatTime(r.deadline)}` : '')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
