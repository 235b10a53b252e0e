/** Shell of the UI: navigation, the role switch, messages and the current screen. */
import { useEffect } from 'react';
import { AdminGate } from './components/AdminGate.js';
import { Messages } from './components/Messages.js';
import { ApprovalScreen } from './screens/Approval.js';
import { CasesScreen } from './screens/Cases.js';
import { FederationScreen } from './screens/Federation.js';
import { TrainingScreen } from './screens/Training.js';
import { ViewerScreen } from './screens/Viewer.js';
import { useUi, type Screen } from './store.js';

const NAV: Array<{ screen: Screen; label: string }> = [
  { screen: 'federation', label: 'Federation' },
  { screen: 'approval', label: 'Round approval' },
  { screen: 'cases', label: 'Cases' },
  { screen: 'viewer', label: 'Viewer' },
  { screen: 'training', label: 'Training' },
];

export function App() {
  const screen = useUi((s) => s.screen);
  const go = useUi((s) => s.go);
  const app = useUi((s) => s.app);
  const pending = app?.pendingRound;
  useEffect(() => {
    document.title = pending ? `Round ${pending.round} waits for approval · FedSeg` : 'FedSeg';
  }, [pending]);
  return (
    <div className="layout">
      <header className="topbar">
        <div className="brand">FedSeg <span className="brand-sub">{app?.connection.siteName ?? 'site'}</span></div>
        <ConnectionBadge />
        <Messages />
        <AdminGate />
      </header>
      <nav className="sidebar">
        {NAV.map((item) => (
          <button key={item.screen} className={item.screen === screen ? 'nav active' : 'nav'} onClick={() => go(item.screen)} data-testid={`nav-${item.screen}`}>
            {item.label}
            {item.screen === 'approval' && pending && <span className="waiting" data-testid="approval-waiting">round {pending.round} waits</span>}
          </button>
        ))}
      </nav>
      <main className="content">
        {screen === 'federation' && <FederationScreen />}
        {screen === 'approval' && <ApprovalScreen />}
        {screen === 'cases' && <CasesScreen />}
        {/* Always mounted: the one viewer keeps its WebGL context, slice, view and unsaved edits across screens. */}
        <ViewerScreen hidden={screen !== 'viewer'} />
        {screen === 'training' && <TrainingScreen />}
      </main>
    </div>
  );
}

function ConnectionBadge() {
  const connection = useUi((s) => s.app?.connection);
  if (!connection) return null;
  const text = { offline: 'Not connected', connecting: 'Connecting…', connected: 'Connected', error: 'Connection problem' }[connection.phase];
  return <span className={`badge conn-${connection.phase}`} data-testid="connection-badge">{text}</span>;
}
