/** Import a BraTS folder and see each case's validation result, review status and local metrics. */
import { useState } from 'react';
import type { CaseSummary } from '../../preload/api.js';
import { api } from '../api.js';
import { formatScore } from '../format.js';
import { useUi } from '../store.js';

const STATUS_TEXT: Record<CaseSummary['status'], string> = { 'not-reviewed': 'Not reviewed', 'in-review': 'In review', final: 'Final' };

export function CasesScreen() {
  const app = useUi((s) => s.app);
  const cases = useUi((s) => s.cases);
  const run = useUi((s) => s.run);
  const setCases = useUi((s) => s.setCases);
  const openCase = useUi((s) => s.openCase);
  const [folder, setFolder] = useState<string | null>(null);
  const path = folder ?? app?.dataFolder ?? '';

  const importFolder = async (chosen: string) => {
    const list = await run('Checking cases', () => api().importFolder({ path: chosen }));
    if (list) {
      setCases(list);
      const errors = list.filter((c) => c.issues.some((i) => i.severity === 'error')).length;
      useUi.setState({ notice: `${list.length} cases imported${errors ? `, ${errors} with errors` : ''}.` });
    }
  };
  const browse = async () => {
    const chosen = await run('Choosing folder', () => api().chooseFolder());
    if (chosen) {
      setFolder(chosen);
      await importFolder(chosen);
    }
  };

  return (
    <section className="screen" data-testid="screen-cases">
      <h1>Cases</h1>
      <div className="card">
        <form className="row" onSubmit={(e) => { e.preventDefault(); void importFolder(path); }}>
          <input className="grow" data-testid="folder-path" aria-label="BraTS folder to import" placeholder="/data/BraTS2020_TrainingData" value={path} onChange={(e) => setFolder(e.target.value)} />
          {app?.capabilities.folderDialog && <button type="button" onClick={() => void browse()}>Browse…</button>}
          <button type="submit" className="primary" disabled={!path} data-testid="import">Import folder</button>
        </form>
        <p className="hint">Cases with a ground-truth or final mask and no errors are used for federated training; the others can be reviewed and predicted.</p>
      </div>
      {cases.length > 0 && (
        <div className="card">
          <table className="table" data-testid="cases">
            <thead>
              <tr><th>Case</th><th>Status</th><th>Masks</th><th>Training</th><th>Dice ET / TC / WT</th><th>Checks</th><th /></tr>
            </thead>
            <tbody>
              {cases.map((c) => (
                <tr key={c.id} data-testid={`case-${c.id}`}>
                  <td>{c.id}</td>
                  <td><span className={`status status-${c.status}`} data-testid={`case-${c.id}-status`}>{STATUS_TEXT[c.status]}</span></td>
                  <td>{[c.has.truth && 'ground truth', c.finalMasks.versions.length > 0 && `${c.finalMasks.versions.length} final version${c.finalMasks.versions.length > 1 ? 's' : ''}`, c.has.prediction && 'prediction'].filter(Boolean).join(', ') || 'none'}</td>
                  <td data-testid={`case-${c.id}-training`}>{c.trainable ? `used, with ${c.finalMasks.chosen !== null ? `final v${c.finalMasks.chosen}` : 'the ground truth'}` : 'not used'}</td>
                  <td>{c.metrics ? `${formatScore(c.metrics.dice.et)} / ${formatScore(c.metrics.dice.tc)} / ${formatScore(c.metrics.dice.wt)}` : '—'}</td>
                  <td>
                    {c.issues.length === 0 ? <span className="ok-text">valid</span> : (
                      <ul className="issues">{c.issues.map((i) => <li key={i.message} className={`issue-${i.severity}`}>{i.message}</li>)}</ul>
                    )}
                  </td>
                  <td>
                    <button
                      onClick={() => openCase(c.id)} data-testid={`open-${c.id}`} disabled={c.issues.some((i) => i.severity === 'error')}
                      title={c.issues.some((i) => i.severity === 'error') ? 'Fix the errors listed to open this case' : undefined} aria-label={`Open ${c.id}`}
                    >Open</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
