/** UI state: the site's state as last reported by the runtime, the case list, navigation and messages. */
import { create } from 'zustand';
import type { AppState, CaseSummary, TrainingProgress } from '../preload/api.js';
import { api } from './api.js';

export type Screen = 'federation' | 'approval' | 'cases' | 'viewer' | 'training';

interface UiState {
  screen: Screen;
  app: AppState | null;
  cases: CaseSummary[];
  caseId: string | null;
  progress: TrainingProgress | null;
  error: string | null;
  notice: string | null;
  /** 'ok' (green) for a success; 'info' for news that is not one (e.g. a declined round). */
  noticeTone: 'ok' | 'info';
  busy: string | null;
  /** Case whose mask has edits not saved as final (they live only in the viewer). */
  unsaved: string | null;
  /** Changes screen; leaving the viewer with unsaved edits asks first. Returns whether it changed. */
  go(screen: Screen): boolean;
  /** Opens a case in the viewer; replacing one with unsaved edits asks first. */
  openCase(caseId: string): boolean;
  setUnsaved(caseId: string | null): void;
  setApp(app: AppState): void;
  setCases(cases: CaseSummary[]): void;
  updateCase(summary: CaseSummary): void;
  setProgress(progress: TrainingProgress): void;
  dismiss(): void;
  /** Runs a request, showing its plain-words error instead of throwing; returns undefined on failure. */
  run<T>(label: string, work: () => Promise<T>, notice?: string): Promise<T | undefined>;
}

export const useUi = create<UiState>((set, get) => ({
  screen: 'federation',
  app: null,
  cases: [],
  caseId: null,
  progress: null,
  error: null,
  notice: null,
  noticeTone: 'ok',
  busy: null,
  unsaved: null,
  go: (screen) => {
    const { unsaved, screen: current } = get();
    if (screen === current) return true;
    if (current === 'viewer' && unsaved && !window.confirm(`${unsaved} has unsaved mask edits. They stay in the viewer while you are away, but are lost if the app closes. Leave the viewer?`)) return false;
    set({ screen });
    return true;
  },
  openCase: (caseId) => {
    const { unsaved } = get();
    if (unsaved && unsaved !== caseId && !window.confirm(`${unsaved} has unsaved mask edits. Opening ${caseId} discards them. Continue?`)) return false;
    set({ caseId, screen: 'viewer' });
    return true;
  },
  setUnsaved: (unsaved) => set({ unsaved }),
  setApp: (app) => {
    const current = get().app;
    if (current && current.revision > app.revision) return;
    set({ app, progress: app.training ?? get().progress });
  },
  setCases: (cases) => set({ cases }),
  updateCase: (summary) => set({ cases: get().cases.map((c) => (c.id === summary.id ? summary : c)) }),
  setProgress: (progress) => set({ progress }),
  dismiss: () => set({ error: null, notice: null }),
  async run(label, work, notice) {
    set({ busy: label, error: null, notice: null });
    try {
      const value = await work();
      set({ busy: null, notice: notice ?? null, noticeTone: 'ok' });
      return value;
    } catch (err) {
      set({ busy: null, error: plain(err) });
      return undefined;
    }
  },
}));

/** Messages from the bridge are already plain words; strip Electron's IPC prefix if one slips through. */
function plain(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^Error invoking remote method '[^']*': (Error: )?/, '');
}

/** Loads the initial state and keeps it current from the runtime's events; guards unsaved edits on close/reload. */
export async function startSync(): Promise<void> {
  window.addEventListener('beforeunload', (event) => {
    if (!useUi.getState().unsaved) return;
    event.preventDefault();
    // Older Chromium (and Electron) show the prompt only when returnValue is set.
    event.returnValue = '';
  });
  const { setApp, setCases, setProgress, run } = useUi.getState();
  api().onEvent((event) => {
    if (event.type === 'state') setApp(event.state);
    else if (event.type === 'progress') setProgress(event.progress);
    else if (event.level === 'error') useUi.setState({ error: event.message });
  });
  const state = await run('Loading', () => api().getState());
  if (state) setApp(state);
  if (state?.dataFolder) {
    const cases = await run('Loading cases', () => api().listCases());
    if (cases) setCases(cases);
  }
}
