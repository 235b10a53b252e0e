/** Plain-words error and notice banner; errors never show stack traces (the bridge strips them). */
import { useUi } from '../store.js';

export function Messages() {
  const { error, notice, noticeTone, busy, dismiss } = useUi();
  return (
    <>
      {busy && <div className="banner banner-busy" role="status" aria-live="polite" data-testid="busy">{busy}…</div>}
      {error && (
        <div className="banner banner-error" role="alert" data-testid="error">
          <span>{error}</span>
          <button onClick={dismiss} aria-label="Dismiss">×</button>
        </div>
      )}
      {notice && !error && (
        <div className={`banner banner-${noticeTone === 'ok' ? 'notice' : 'info'}`} role="status" aria-live="polite" data-testid="notice">
          <span>{notice}</span>
          <button onClick={dismiss} aria-label="Dismiss">×</button>
        </div>
      )}
    </>
  );
}
