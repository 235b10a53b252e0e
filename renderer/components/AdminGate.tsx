/**
 * Role switch in the header: the admin passphrase is set once (typed twice, strength rule checked by the
 * runtime), unlocks admin mode, can be changed while unlocked, and admin mode locks itself after the idle time.
 */
import { useEffect, useState } from 'react';
import { api } from '../api.js';
import { useUi } from '../store.js';

const RULE = '12+ characters, two of letters, digits, spaces or symbols';
const INPUT_EVENTS = ['mousemove', 'mousedown', 'keydown', 'wheel', 'touchstart'] as const;

/** Locks admin mode after `seconds` without input; returns nothing, acts through the store. */
function useIdleLock(active: boolean, seconds: number) {
  useEffect(() => {
    if (!active) return undefined;
    let last = Date.now();
    const touch = () => (last = Date.now());
    for (const name of INPUT_EVENTS) window.addEventListener(name, touch, { passive: true });
    const timer = setInterval(() => {
      if (Date.now() - last < seconds * 1000) return;
      clearInterval(timer);
      void api().lockAdmin().then((state) => {
        useUi.getState().setApp(state);
        useUi.setState({ notice: `Admin mode locked after ${seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${seconds} s`} without activity.`, noticeTone: 'info' });
      });
    }, 1000);
    return () => {
      clearInterval(timer);
      for (const name of INPUT_EVENTS) window.removeEventListener(name, touch);
    };
  }, [active, seconds]);
}

export function AdminGate() {
  const app = useUi((s) => s.app);
  const run = useUi((s) => s.run);
  const setApp = useUi((s) => s.setApp);
  const [passphrase, setPassphrase] = useState('');
  const [current, setCurrent] = useState('');
  const [confirm, setConfirm] = useState('');
  const [changing, setChanging] = useState(false);
  useIdleLock(app?.role === 'admin', app?.adminIdleSeconds ?? 600);
  if (!app) return null;

  const reset = () => {
    setPassphrase('');
    setCurrent('');
    setConfirm('');
  };
  const setNew = async (currentPassphrase?: string) => {
    if (passphrase !== confirm) {
      useUi.setState({ error: 'The two passphrases differ. Type the same passphrase twice.' });
      return;
    }
    const next = await run('Setting passphrase', () => api().setAdminPassphrase({ next: passphrase, ...(currentPassphrase !== undefined ? { current: currentPassphrase } : {}) }), 'Admin passphrase set.');
    reset();
    if (next) {
      setApp(next);
      setChanging(false);
    }
  };

  if (app.role === 'admin') {
    return (
      <div className="admin-gate">
        <span className="badge badge-admin" data-testid="role">Site admin</span>
        {changing ? (
          <form className="admin-gate" onSubmit={(e) => { e.preventDefault(); void setNew(current); }}>
            <input type="password" aria-label="Current admin passphrase" placeholder="Current passphrase" value={current} onChange={(e) => setCurrent(e.target.value)} data-testid="admin-current" autoComplete="off" />
            <input type="password" aria-label="New admin passphrase" placeholder={`New (${RULE})`} title={RULE} value={passphrase} onChange={(e) => setPassphrase(e.target.value)} data-testid="admin-passphrase" autoComplete="off" />
            <input type="password" aria-label="Repeat the new admin passphrase" placeholder="Repeat new" value={confirm} onChange={(e) => setConfirm(e.target.value)} data-testid="admin-confirm" autoComplete="off" />
            <button type="submit" data-testid="admin-change-save" disabled={!current || !passphrase || !confirm}>Change</button>
            <button type="button" onClick={() => { reset(); setChanging(false); }}>Cancel</button>
          </form>
        ) : <button onClick={() => setChanging(true)} data-testid="admin-change">Change passphrase</button>}
        <button onClick={async () => { const s = await run('Locking', () => api().lockAdmin()); if (s) setApp(s); }} data-testid="admin-lock">Lock</button>
      </div>
    );
  }
  if (!app.adminPassphraseSet) {
    return (
      <form className="admin-gate" onSubmit={(e) => { e.preventDefault(); void setNew(); }}>
        <span className="badge" data-testid="role">Reviewer</span>
        <input type="password" aria-label="New admin passphrase" placeholder={`Set admin passphrase (${RULE})`} title={RULE} value={passphrase} onChange={(e) => setPassphrase(e.target.value)} data-testid="admin-passphrase" autoComplete="off" />
        <input type="password" aria-label="Repeat the admin passphrase" placeholder="Repeat it" value={confirm} onChange={(e) => setConfirm(e.target.value)} data-testid="admin-confirm" autoComplete="off" />
        <button type="submit" data-testid="admin-unlock" disabled={passphrase.length === 0 || confirm.length === 0}>Set passphrase</button>
      </form>
    );
  }
  const unlock = async () => {
    const next = await run('Unlocking', () => api().unlockAdmin({ passphrase }));
    setPassphrase('');
    if (next) setApp(next);
  };
  return (
    <form className="admin-gate" onSubmit={(e) => { e.preventDefault(); void unlock(); }}>
      <span className="badge" data-testid="role">Reviewer</span>
      <input type="password" aria-label="Admin passphrase" placeholder="Admin passphrase" value={passphrase} onChange={(e) => setPassphrase(e.target.value)} data-testid="admin-passphrase" autoComplete="off" />
      <button type="submit" data-testid="admin-unlock" disabled={passphrase.length === 0}>Unlock admin</button>
    </form>
  );
}
