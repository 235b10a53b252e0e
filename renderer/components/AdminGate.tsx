/** Role switch in the header: reviewers unlock admin actions with the local admin passphrase. */
import { useState } from 'react';
import { api } from '../api.js';
import { useUi } from '../store.js';

export function AdminGate() {
  const app = useUi((s) => s.app);
  const run = useUi((s) => s.run);
  const setApp = useUi((s) => s.setApp);
  const [passphrase, setPassphrase] = useState('');
  if (!app) return null;

  if (app.role === 'admin') {
    return (
      <div className="admin-gate">
        <span className="badge badge-admin" data-testid="role">Site admin</span>
        <button onClick={async () => { const s = await run('Locking', () => api().lockAdmin()); if (s) setApp(s); }}>Lock</button>
      </div>
    );
  }
  const submit = async () => {
    const next = app.adminPassphraseSet
      ? await run('Unlocking', () => api().unlockAdmin({ passphrase }))
      : await run('Setting passphrase', () => api().setAdminPassphrase({ next: passphrase }), 'Admin passphrase set.');
    setPassphrase('');
    if (next) setApp(next);
  };
  return (
    <form className="admin-gate" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
      <span className="badge" data-testid="role">Reviewer</span>
      <input
        type="password"
        placeholder={app.adminPassphraseSet ? 'Admin passphrase' : 'New admin passphrase (8+ characters)'}
        value={passphrase}
        onChange={(e) => setPassphrase(e.target.value)}
        data-testid="admin-passphrase"
        autoComplete="off"
      />
      <button type="submit" data-testid="admin-unlock" disabled={passphrase.length === 0}>
        {app.adminPassphraseSet ? 'Unlock admin' : 'Set passphrase'}
      </button>
    </form>
  );
}
