/**
 * Niivue viewer and per-slice review: modality and view switches, the mask overlay in BraTS colours with
 * opacity and per-label toggles, slice stepping (slider, buttons, arrow keys), tumour volumes, slice marks,
 * and mask editing (label pen, eraser, undo) saved as the case's final mask.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ReviewState } from '../../preload/api.js';
import { MODALITIES, type MaskSource, type Modality } from '../../preload/values.js';
import { api } from '../api.js';
import { useUi } from '../store.js';
import { ViewerController, type SlicePosition, type ViewMode } from '../viewer/controller.js';
import { LABELS, regionVolumesMl, type LabelValue } from '../viewer/labels.js';

const MODALITY_TEXT: Record<Modality, string> = { flair: 'FLAIR', t1ce: 'T1ce', t2: 'T2', t1: 'T1' };
const VIEWS: Array<{ view: ViewMode; label: string }> = [
  { view: 'axial', label: 'Axial' }, { view: 'coronal', label: 'Coronal' }, { view: 'sagittal', label: 'Sagittal' }, { view: 'multiplanar', label: 'Multiplanar' },
];
const MASK_TEXT: Record<MaskSource, string> = { truth: 'Ground truth', prediction: 'Model prediction', final: 'Final (reviewed)' };
type Tool = 'off' | 'pen' | 'erase';

export function ViewerScreen() {
  const caseId = useUi((s) => s.caseId);
  const summary = useUi((s) => s.cases.find((c) => c.id === s.caseId) ?? null);
  const run = useUi((s) => s.run);
  const updateCase = useUi((s) => s.updateCase);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [controller, setController] = useState<ViewerController | null>(null);
  const [modality, setModality] = useState<Modality>('flair');
  const [view, setView] = useState<ViewMode>('axial');
  const [mask, setMask] = useState<MaskSource | 'none'>('none');
  const [opacity, setOpacity] = useState(0.6);
  const [visible, setVisible] = useState<Record<LabelValue, boolean>>({ 1: true, 2: true, 4: true });
  const [position, setPosition] = useState<SlicePosition>({ axis: 'axial', index: 0, count: 0 });
  const [volumes, setVolumes] = useState({ et: 0, tc: 0, wt: 0 });
  const [review, setReview] = useState<ReviewState | null>(null);
  const [tool, setTool] = useState<Tool>('off');
  const [penLabel, setPenLabel] = useState<LabelValue>(1);
  const [edited, setEdited] = useState(false);
  const [ready, setReady] = useState(false);
  const [tumourOnly, setTumourOnly] = useState(true);
  const skipEdit = useRef(true);

  // One Niivue instance per visit of the screen.
  useEffect(() => {
    const c = new ViewerController();
    c.subscribe(setPosition, () => {
      const labels = c.labels();
      setVolumes(labels ? regionVolumesMl(labels, c.voxelVolumeMm3()) : { et: 0, tc: 0, wt: 0 });
      if (skipEdit.current) skipEdit.current = false;
      else setEdited(true);
    });
    void c.attach(canvasRef.current!).then(() => setController(c));
  }, []);

  // Load the case: FLAIR first, then the best mask available (final > ground truth > prediction).
  useEffect(() => {
    if (!controller || !caseId || !summary) return;
    setReady(false);
    const initialMask: MaskSource | 'none' = summary.has.final ? 'final' : summary.has.truth ? 'truth' : summary.has.prediction ? 'prediction' : 'none';
    void run('Loading case', async () => {
      await controller.showImage(await api().readVolume({ caseId, kind: modality }), `${caseId}_${modality}`);
      await loadMask(controller, caseId, initialMask);
      setMask(initialMask);
      setReview(await api().getReview({ caseId }));
      setEdited(false);
      setReady(true);
    });
  }, [controller, caseId]);

  const loadMask = async (c: ViewerController, id: string, source: MaskSource | 'none') => {
    skipEdit.current = true;
    await c.showMask(source === 'none' ? null : await api().readVolume({ caseId: id, kind: source }), `${id}_${source}`);
    setEdited(false);
  };

  const switchModality = async (next: Modality) => {
    if (!controller || !caseId) return;
    setModality(next);
    await run(`Loading ${MODALITY_TEXT[next]}`, async () => controller.showImage(await api().readVolume({ caseId, kind: next }), `${caseId}_${next}`));
  };

  const switchMask = async (next: MaskSource | 'none') => {
    if (!controller || !caseId) return;
    if (edited && !window.confirm('Discard the unsaved edits to the mask?')) return;
    setMask(next);
    await run('Loading mask', () => loadMask(controller, caseId, next));
  };

  const predict = async () => {
    if (!controller || !caseId) return;
    const result = await run('Predicting with the current model', () => api().predict({ caseId }));
    if (!result) return;
    updateCase(result.caseSummary);
    setMask('prediction');
    await run('Loading prediction', () => loadMask(controller, caseId, 'prediction'));
    useUi.setState({ notice: `Prediction ready in ${result.seconds.toFixed(1)} s on ${result.backend}: whole tumour ${result.volumesMl.wt.toFixed(1)} mL.` });
  };

  const step = useCallback((delta: number) => controller?.step(delta), [controller]);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (target && ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName) && (target as HTMLInputElement).type !== 'range') return;
      if (e.key === 'ArrowUp' || e.key === 'PageUp') step(1);
      else if (e.key === 'ArrowDown' || e.key === 'PageDown') step(-1);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [step]);

  const mark = async (value: 'ok' | 'wrong' | null) => {
    if (!caseId) return;
    const next = await run('Saving mark', () => api().setSliceMark({ caseId, axis: position.axis, slice: position.index, mark: value }));
    if (next) {
      setReview(next);
      const cases = await api().listCases();
      useUi.getState().setCases(cases);
    }
  };

  const jump = (kind: 'unreviewed' | 'flagged') => {
    if (!controller || !review) return;
    const axis = position.axis;
    const candidates = kind === 'unreviewed' && tumourOnly ? controller.slicesWithMask(axis) : null;
    for (let k = 1; k <= position.count; k++) {
      const slice = (position.index + k) % position.count;
      const m = review.marks[`${axis}:${slice}`];
      const hit = kind === 'flagged' ? m === 'wrong' : m === undefined && (!candidates || candidates.has(slice));
      if (hit) {
        controller.goToSlice(slice);
        return;
      }
    }
    useUi.setState({ notice: kind === 'flagged' ? 'No flagged slices.' : 'Every slice has been reviewed.' });
  };

  const chooseTool = (next: Tool, label = penLabel) => {
    setTool(next);
    setPenLabel(label);
    controller?.setTool(next, label);
  };

  const saveFinal = async () => {
    if (!controller || !caseId) return;
    const saved = await run('Saving final mask', async () => api().saveFinalMask({ caseId, nifti: await controller.exportMask() }), `Saved ${caseId}_final_seg.nii.gz.`);
    if (saved) {
      updateCase(saved);
      setMask('final');
      setEdited(false);
    }
  };

  if (!caseId || !summary) {
    return (
      <section className="screen" data-testid="screen-viewer">
        <h1>Viewer</h1>
        <div className="card"><p className="hint">Open a case from the Cases screen.</p></div>
      </section>
    );
  }
  const currentMark = review?.marks[`${position.axis}:${position.index}`];
  const marks = Object.entries(review?.marks ?? {});
  return (
    <section className="screen viewer-screen" data-testid="screen-viewer">
      <h1>{caseId} <span className={`status status-${summary.status}`} data-testid="case-status">{summary.status.replace('-', ' ')}</span></h1>
      <div className="viewer-toolbar">
        <div className="segmented" role="group" aria-label="Modality">
          {MODALITIES.map((m) => (
            <button key={m} className={m === modality ? 'on' : ''} disabled={!summary.has[m]} onClick={() => void switchModality(m)} data-testid={`modality-${m}`}>{MODALITY_TEXT[m]}</button>
          ))}
        </div>
        <div className="segmented" role="group" aria-label="View">
          {VIEWS.map((v) => (
            <button key={v.view} className={v.view === view ? 'on' : ''} onClick={() => { setView(v.view); controller?.setView(v.view); }} data-testid={`view-${v.view}`}>{v.label}</button>
          ))}
        </div>
      </div>
      <div className="viewer-body">
        <div className="viewer-canvas-wrap">
          <div className="canvas-box">
            <canvas ref={canvasRef} className="viewer-canvas" data-testid="viewer-canvas" data-ready={ready ? 'yes' : 'no'} />
          </div>
          <div className="slice-bar">
            <button onClick={() => step(-1)} aria-label="Previous slice" data-testid="slice-prev">◀</button>
            <input
              type="range" min={0} max={Math.max(0, position.count - 1)} value={position.index} data-testid="slice-slider"
              onChange={(e) => controller?.goToSlice(Number(e.target.value))} aria-label="Slice"
            />
            <button onClick={() => step(1)} aria-label="Next slice" data-testid="slice-next">▶</button>
            <span className="slice-number" data-testid="slice-number">{position.axis} slice {position.index + 1} / {position.count}</span>
          </div>
        </div>
        <aside className="viewer-panel">
          <h3>Mask overlay</h3>
          <select value={mask} onChange={(e) => void switchMask(e.target.value as MaskSource | 'none')} data-testid="mask-source">
            <option value="none">None (draw new)</option>
            {(['truth', 'prediction', 'final'] as const).map((s) => <option key={s} value={s} disabled={!summary.has[s]}>{MASK_TEXT[s]}</option>)}
          </select>
          <button onClick={() => void predict()} data-testid="predict">Predict with current model</button>
          <label className="slider-label">Opacity {Math.round(opacity * 100)}%
            <input type="range" min={0} max={1} step={0.05} value={opacity} data-testid="opacity" onChange={(e) => { const v = Number(e.target.value); setOpacity(v); controller?.setOpacity(v); }} />
          </label>
          <div className="labels">
            {LABELS.map((l) => (
              <label key={l.value} className="label-toggle">
                <input type="checkbox" checked={visible[l.value]} data-testid={`label-${l.value}`} onChange={(e) => { setVisible({ ...visible, [l.value]: e.target.checked }); controller?.setLabelVisible(l.value, e.target.checked); }} />
                <span className="swatch" style={{ background: `rgb(${l.rgb.join(',')})` }} /> {l.value} {l.short}
              </label>
            ))}
          </div>
          <h3>Tumour volume</h3>
          <table className="table compact" data-testid="volumes">
            <tbody>
              <tr><td>Enhancing tumour (ET)</td><td data-testid="volume-et">{volumes.et.toFixed(2)} mL</td></tr>
              <tr><td>Tumour core (TC)</td><td data-testid="volume-tc">{volumes.tc.toFixed(2)} mL</td></tr>
              <tr><td>Whole tumour (WT)</td><td data-testid="volume-wt">{volumes.wt.toFixed(2)} mL</td></tr>
            </tbody>
          </table>
          <h3>Review this slice</h3>
          <p data-testid="slice-mark">{currentMark === 'ok' ? 'Marked OK' : currentMark === 'wrong' ? 'Flagged as wrong' : 'Not reviewed'}</p>
          <div className="row">
            <button onClick={() => void mark('ok')} data-testid="mark-ok">OK</button>
            <button className="danger" onClick={() => void mark('wrong')} data-testid="mark-wrong">Wrong</button>
            <button onClick={() => void mark(null)} disabled={!currentMark}>Clear</button>
          </div>
          <div className="row">
            <button onClick={() => jump('unreviewed')} data-testid="next-unreviewed">Next unreviewed</button>
            <button onClick={() => jump('flagged')} data-testid="next-flagged">Next flagged</button>
          </div>
          <label className="check"><input type="checkbox" checked={tumourOnly} onChange={(e) => setTumourOnly(e.target.checked)} /> only slices with mask</label>
          <p className="muted" data-testid="review-counts">{marks.filter(([, m]) => m === 'ok').length} OK · {marks.filter(([, m]) => m === 'wrong').length} flagged</p>
          <h3>Edit mask</h3>
          <div className="segmented" role="group" aria-label="Tool">
            <button className={tool === 'off' ? 'on' : ''} onClick={() => chooseTool('off')} data-testid="tool-off">Navigate</button>
            {LABELS.map((l) => (
              <button key={l.value} className={tool === 'pen' && penLabel === l.value ? 'on' : ''} onClick={() => chooseTool('pen', l.value)} data-testid={`tool-pen-${l.value}`} title={l.name}>
                <span className="swatch" style={{ background: `rgb(${l.rgb.join(',')})` }} /> {l.value}
              </button>
            ))}
            <button className={tool === 'erase' ? 'on' : ''} onClick={() => chooseTool('erase')} data-testid="tool-erase">Eraser</button>
          </div>
          <div className="row">
            <button onClick={() => controller?.undo()} data-testid="undo">Undo</button>
            <button className="primary" onClick={() => void saveFinal()} data-testid="save-final">Save as final mask</button>
          </div>
          {edited && <p className="hint" data-testid="unsaved">Unsaved edits.</p>}
        </aside>
      </div>
    </section>
  );
}
