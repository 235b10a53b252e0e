/**
 * Plain-words busy, error and notice messages; errors never show stack traces (the bridge strips them). They
 * sit in the header bar, so showing or dismissing one never moves (or resizes) the viewer; a long one is cut
 * with its full text as the tooltip. The region is always in the page so screen readers announce what appears.
 */
import { useUi } from '../store.js';

export function Messages() {
  const { error, notice, noticeTone, busy, dismiss } = useUi();
  return (
    <div className="messages" aria-live="polite" data-testid="messages">
      {busy && <div className="banner banner-busy" role="status" data-testid="busy">{busy}…</div>}
      {error && (
        <div className="banner banner-error" role="alert" data-testid="error">
          <span title={error}>{error}</span>
          <button onClick={dismiss} aria-label="Dismiss">×</button>
        </div>
      )}
      {notice && !error && (
        <div className={`banner banner-${noticeTone === 'ok' ? 'notice' : 'info'}`} role="status" data-testid="notice">
          <span title={notice}>{notice}</span>
          <button onClick={dismiss} aria-label="Dismiss">×</button>
        </div>
      )}
    </div>
  );
}
