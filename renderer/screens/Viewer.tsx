/**
 * Niivue viewer and per-slice review: modality and view switches, radiological/neurological convention,
 * window/level presets, zoom, the readout under the cursor, the mask overlay in BraTS colours with opacity and
 * per-label toggles, slice stepping, tumour volumes, slice marks, and mask editing saved as a new final-mask
 * version with its provenance (after plausibility checks), with the saved versions listed for revert.
 *
 * The screen stays mounted while hidden, so its one Niivue canvas (one WebGL context), the slice, the view
 * and any unsaved edits survive a visit to another screen.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { CaseSummary, MaskComparison, MaskWarning, RequestOf, ReviewState } from '../../preload/api.js';
import { MODALITIES, type Modality } from '../../preload/values.js';
import { api } from '../api.js';
import { formatScore, formatTime } from '../format.js';
import { useUi } from '../store.js';
import { ViewerController, ZOOM_STEP, type CompareMode, type Probe, type SlicePosition, type Tool, type ViewMode } from '../viewer/controller.js';
import { LABELS, regionVolumesMl, type LabelValue } from '../viewer/labels.js';
import { DEFAULT_PRESET, PRESET_TEXT, WINDOW_PRESETS, type WindowPreset } from '../viewer/window.js';
import { ProvenanceText, sourceText } from '../components/Provenance.js';

const MODALITY_TEXT: Record<Modality, string> = { flair: 'FLAIR', t1ce: 'T1ce', t2: 'T2', t1: 'T1' };
const VIEWS: Array<{ view: ViewMode; label: string }> = [
  { view: 'axial', label: 'Axial' }, { view: 'coronal', label: 'Coronal' }, { view: 'sagittal', label: 'Sagittal' }, { view: 'multiplanar', label: 'Multiplanar' },
];
const TOOLS: Array<{ tool: Tool; label: string; title: string }> = [
  { tool: 'off', label: 'Navigate', title: 'Click moves the crosshair; right-drag pans, the wheel zooms' },
  { tool: 'pen', label: 'Pen', title: 'Paint the chosen label' },
  { tool: 'fill', label: 'Fill', title: 'Draw around a region: the outline and everything inside it get the label' },
  { tool: 'grow', label: 'Grow', title: 'Click a voxel: the connected region of similar intensity gets the label (threshold region growing)' },
  { tool: 'erase', label: 'Eraser', title: 'Paint background (label 0)' },
];
const PEN_SIZES = [1, 3, 5, 9, 15];
const LABEL_KEYS: Record<string, LabelValue> = { 1: 1, 2: 2, 4: 4 };
/** The mask being shown and edited: what a saved version records as its source. */
type Loaded = RequestOf<'saveFinalMask'>['source'];
type MaskChoice = 'none' | 'truth' | 'prediction' | `final:${number}`;

function choiceOf(loaded: Loaded): MaskChoice {
  return loaded.kind === 'blank' ? 'none' : loaded.kind === 'final' ? `final:${loaded.version}` : loaded.kind;
}

function loadedOf(choice: MaskChoice): Loaded {
  if (choice === 'none') return { kind: 'blank' };
  if (choice.startsWith('final:')) return { kind: 'final', version: Number(choice.slice(6)) };
  return { kind: choice as 'truth' | 'prediction' };
}

/** Orientation letters at the left, right, top and bottom edge of a single 2D view. */
function edgeLetters(view: ViewMode, radiological: boolean): [string, string, string, string] | null {
  const [left, right] = radiological ? ['R', 'L'] : ['L', 'R'];
  if (view === 'axial') return [left, right, 'A', 'P'];
  if (view === 'coronal') return [left, right, 'S', 'I'];
  if (view === 'sagittal') return ['P', 'A', 'S', 'I'];
  return null;
}

function compareText(choice: MaskChoice, summary: CaseSummary): string {
  const source = loadedOf(choice);
  return sourceText(source.kind === 'prediction' ? { kind: 'prediction', ...(summary.prediction ?? { round: null, modelSha256: null }) } : source);
}

/** Initial mask: the final version in use, else the ground truth, else the prediction, else blank. */
function initialMask(summary: CaseSummary): Loaded {
  if (summary.finalMasks.chosen !== null) return { kind: 'final', version: summary.finalMasks.chosen };
  if (summary.has.truth) return { kind: 'truth' };
  if (summary.has.prediction) return { kind: 'prediction' };
  return { kind: 'blank' };
}

export function ViewerScreen({ hidden }: { hidden: boolean }) {
  const caseId = useUi((s) => s.caseId);
  const summary = useUi((s) => s.cases.find((c) => c.id === s.caseId) ?? null);
  const run = useUi((s) => s.run);
  const updateCase = useUi((s) => s.updateCase);
  const setUnsaved = useUi((s) => s.setUnsaved);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [controller, setController] = useState<ViewerController | null>(null);
  const [modality, setModality] = useState<Modality>('flair');
  const [preset, setPreset] = useState<WindowPreset>(DEFAULT_PRESET.flair);
  const [windowRange, setWindowRange] = useState<{ min: number; max: number } | null>(null);
  const [view, setView] = useState<ViewMode>('axial');
  const [radiological, setRadiological] = useState(true);
  const [crosshair, setCrosshair] = useState(true);
  const [zoom, setZoom] = useState(1);
  const [probe, setProbe] = useState<Probe | null>(null);
  const [loaded, setLoaded] = useState<Loaded>({ kind: 'blank' });
  const [opacity, setOpacity] = useState(0.6);
  const [visible, setVisible] = useState<Record<LabelValue, boolean>>({ 1: true, 2: true, 4: true });
  const [position, setPosition] = useState<SlicePosition>({ axis: 'axial', index: 0, count: 0 });
  const [volumes, setVolumes] = useState({ et: 0, tc: 0, wt: 0 });
  const [review, setReview] = useState<ReviewState | null>(null);
  const [tool, setTool] = useState<Tool>('off');
  const [penLabel, setPenLabel] = useState<LabelValue>(1);
  const [penSize, setPenSize] = useState(3);
  const [brush3D, setBrush3D] = useState(false);
  const [history, setHistory] = useState({ undo: false, redo: false });
  const [compare, setCompare] = useState<{ with: MaskChoice; mode: CompareMode }>({ with: 'none', mode: 'outline' });
  const [edited, setEdited] = useState(false);
  const [phase, setPhase] = useState<'empty' | 'loading' | 'ready' | 'error'>('empty');
  const [loadError, setLoadError] = useState<string | null>(null);
  const [tumourOnly, setTumourOnly] = useState(true);
  const [pendingSave, setPendingSave] = useState<{ comparison: MaskComparison; warnings: MaskWarning[] } | null>(null);
  const skipEdit = useRef(true);

  const markEdited = useCallback((value: boolean) => {
    setEdited(value);
    setUnsaved(value ? useUi.getState().caseId : null);
  }, [setUnsaved]);

  // The app's one Niivue instance, attached once to the canvas that lives as long as the app.
  useEffect(() => {
    const c = new ViewerController();
    c.subscribe(setPosition, () => {
      const labels = c.labels();
      setVolumes(labels ? regionVolumesMl(labels, c.voxelVolumeMm3()) : { et: 0, tc: 0, wt: 0 });
      setHistory({ undo: c.canUndo(), redo: c.canRedo() });
      if (skipEdit.current) skipEdit.current = false;
      else markEdited(true);
    });
    void c.attach(canvasRef.current!).then(() => setController(c));
  }, [markEdited]);

  useEffect(() => {
    if (!hidden) controller?.reveal();
  }, [hidden, controller]);

  const loadMask = useCallback(async (c: ViewerController, id: string, source: Loaded) => {
    skipEdit.current = true;
    const bytes = source.kind === 'blank' ? null : await api().readVolume({ caseId: id, kind: source.kind, ...(source.kind === 'final' ? { version: source.version } : {}) });
    await c.showMask(bytes, `${id}_${choiceOf(source).replace(':', '')}`);
    await c.showComparison(null, 'outline');
    setCompare((current) => ({ ...current, with: 'none' }));
    setLoaded(source);
    markEdited(false);
  }, [markEdited]);

  // Load the case: FLAIR first, then the best mask available, on the slice with the most tumour.
  useEffect(() => {
    if (!controller || !caseId) return;
    const current = useUi.getState().cases.find((c) => c.id === caseId);
    if (!current) return;
    setPhase('loading');
    setLoadError(null);
    setModality('flair');
    setPreset(DEFAULT_PRESET.flair);
    void (async () => {
      const ok = await run('Loading case', async () => {
        await controller.showImage(await api().readVolume({ caseId, kind: 'flair' }), `${caseId}_flair`, DEFAULT_PRESET.flair);
        setWindowRange(controller.window());
        await loadMask(controller, caseId, initialMask(current));
        controller.goToLargestTumourSlice();
        setReview(await api().getReview({ caseId }));
        return true;
      });
      setPhase(ok ? 'ready' : 'error');
      if (!ok) setLoadError(useUi.getState().error);
    })();
  }, [controller, caseId, run, loadMask]);

  const switchModality = async (next: Modality) => {
    if (!controller || !caseId) return;
    setModality(next);
    setPreset(DEFAULT_PRESET[next]);
    await run(`Loading ${MODALITY_TEXT[next]}`, async () => {
      await controller.showImage(await api().readVolume({ caseId, kind: next }), `${caseId}_${next}`, DEFAULT_PRESET[next]);
      setWindowRange(controller.window());
    });
  };

  const choosePreset = (next: WindowPreset) => {
    setPreset(next);
    if (controller) setWindowRange(controller.setWindow(next));
  };

  const switchMask = async (next: MaskChoice) => {
    if (!controller || !caseId) return;
    if (edited && !window.confirm('Discard the unsaved edits to the mask?')) return;
    await run('Loading mask', () => loadMask(controller, caseId, loadedOf(next)));
  };

  const predict = async () => {
    if (!controller || !caseId) return;
    if (edited && !window.confirm('Predicting replaces the mask shown. Discard the unsaved edits?')) return;
    const result = await run('Predicting with the current model', () => api().predict({ caseId }));
    if (!result) return;
    updateCase(result.caseSummary);
    await run('Loading prediction', () => loadMask(controller, caseId, { kind: 'prediction' }));
    useUi.setState({ notice: `Prediction ready in ${result.seconds.toFixed(1)} s on ${result.backend}: whole tumour ${result.volumesMl.wt.toFixed(1)} mL.` });
  };

  const step = useCallback((delta: number) => controller?.step(delta), [controller]);
  // The newest key handler, so the listener below never sees stale state.
  const onKey = useRef<(e: KeyboardEvent) => void>(() => undefined);
  useEffect(() => {
    if (hidden) return undefined;
    const listener = (e: KeyboardEvent) => onKey.current(e);
    window.addEventListener('keydown', listener);
    return () => window.removeEventListener('keydown', listener);
  }, [hidden]);

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

  /** A label button or key picks the label; it also picks the pen unless a labelling tool is already chosen. */
  const chooseLabel = (label: LabelValue) => chooseTool(tool === 'pen' || tool === 'fill' || tool === 'grow' ? tool : 'pen', label);

  const okAndNext = async () => {
    await mark('ok');
    jump('unreviewed');
  };

  const showComparison = async (next: { with: MaskChoice; mode: CompareMode }) => {
    if (!controller || !caseId) return;
    setCompare(next);
    const source = loadedOf(next.with);
    await run(next.mode === 'difference' ? 'Computing the difference' : 'Loading the comparison', async () => controller.showComparison(
      next.with === 'none' || source.kind === 'blank' ? null : await api().readVolume({ caseId, kind: source.kind, ...(source.kind === 'final' ? { version: source.version } : {}) }),
      next.mode,
    ));
  };

  onKey.current = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement | null;
    // Form controls keep their own keys (the slice slider steps slices through its own change event); buttons keep Enter and Space.
    if (target && ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
    if (target?.tagName === 'BUTTON' && (e.key === 'Enter' || e.key === ' ')) return;
    if (!ready) return;
    const ctrl = e.ctrlKey || e.metaKey;
    if (ctrl && e.key.toLowerCase() === 'z') void (e.shiftKey ? controller?.redo() : controller?.undo());
    else if (ctrl && e.key.toLowerCase() === 'y') controller?.redo();
    else if (ctrl || e.altKey) return;
    else if (e.key === 'ArrowUp' || e.key === 'PageUp') step(1);
    else if (e.key === 'ArrowDown' || e.key === 'PageDown') step(-1);
    else if (LABEL_KEYS[e.key]) chooseLabel(LABEL_KEYS[e.key]);
    else if (e.key === 'o') void mark('ok');
    else if (e.key === 'w') void mark('wrong');
    else if (e.key === 'n') void okAndNext();
    else if (e.key === 'Escape') chooseTool('off');
    else return;
    e.preventDefault();
  };

  const saveFinal = async (confirm: MaskWarning[] = []) => {
    if (!controller || !caseId) return;
    setPendingSave(null);
    const result = await run('Checking and saving the final mask', async () => api().saveFinalMask({
      caseId, nifti: await controller.exportMask(), source: loaded, confirm: confirm.map((w) => w.code),
    }));
    if (!result) return;
    if (!result.saved) {
      setPendingSave({ comparison: result.comparison, warnings: result.warnings });
      return;
    }
    updateCase(result.summary);
    setLoaded({ kind: 'final', version: result.version.version });
    markEdited(false);
    const dice = result.version.diceVsSource;
    useUi.setState({
      notice: `Saved final mask v${result.version.version} of ${caseId}${dice ? ` (WT Dice ${formatScore(dice.wt)} against ${sourceText(result.version.source)})` : ''}; it is used for training.`,
    });
  };

  const useVersion = async (version: number | null) => {
    if (!caseId) return;
    const next = await run('Changing the mask used for training', () => api().chooseFinalMask({ caseId, version }),
      version === null ? `${caseId}: the ground truth is used for training again.` : `${caseId}: final mask v${version} is used for training.`);
    if (next) updateCase(next);
  };

  const showProbe = (e: React.MouseEvent<HTMLCanvasElement>) => setProbe(controller?.probe(e.clientX, e.clientY) ?? null);

  const ready = phase === 'ready';
  const interpolation = history.undo ? controller?.interpolationRange() ?? null : null;
  const currentMark = review?.marks[`${position.axis}:${position.index}`];
  const marks = Object.entries(review?.marks ?? {});
  const letters = edgeLetters(view, radiological);
  const versions = summary?.finalMasks.versions ?? [];
  const chosen = summary?.finalMasks.chosen ?? null;
  const loadedText = summary ? sourceText(loaded.kind === 'prediction' ? { kind: 'prediction', ...(summary.prediction ?? { round: null, modelSha256: null }) } : loaded) : '';
  return (
    <section className="screen viewer-screen" data-testid="screen-viewer" hidden={hidden}>
      {!caseId || !summary ? (
        <>
          <h1>Viewer</h1>
          <div className="card"><p className="hint">Open a case from the Cases screen.</p></div>
        </>
      ) : (
        <>
          <h1>{caseId} <span className={`status status-${summary.status}`} data-testid="case-status">{summary.status.replace('-', ' ')}</span></h1>
          <div className="viewer-toolbar">
            <div className="segmented" role="group" aria-label="Modality">
              {MODALITIES.map((m) => (
                <button key={m} className={m === modality ? 'on' : ''} aria-pressed={m === modality} disabled={!summary.has[m] || !ready} onClick={() => void switchModality(m)} data-testid={`modality-${m}`}>{MODALITY_TEXT[m]}</button>
              ))}
            </div>
            <div className="segmented" role="group" aria-label="View">
              {VIEWS.map((v) => (
                <button key={v.view} className={v.view === view ? 'on' : ''} aria-pressed={v.view === view} onClick={() => { setView(v.view); controller?.setView(v.view); }} data-testid={`view-${v.view}`}>{v.label}</button>
              ))}
            </div>
            <div className="segmented" role="group" aria-label="Window">
              {WINDOW_PRESETS.map((p) => (
                <button key={p} className={p === preset ? 'on' : ''} aria-pressed={p === preset} onClick={() => choosePreset(p)} data-testid={`window-${p}`}>{PRESET_TEXT[p]}</button>
              ))}
              <button onClick={() => choosePreset(DEFAULT_PRESET[modality])} data-testid="window-reset" title={`Back to the ${MODALITY_TEXT[modality]} default`}>Reset</button>
            </div>
            <div className="segmented" role="group" aria-label="Zoom">
              <button onClick={() => controller && setZoom(controller.zoom(1 / ZOOM_STEP))} aria-label="Zoom out" data-testid="zoom-out">−</button>
              <button onClick={() => controller && setZoom(controller.zoom(null))} data-testid="zoom-fit">{Math.round(zoom * 100)} %</button>
              <button onClick={() => controller && setZoom(controller.zoom(ZOOM_STEP))} aria-label="Zoom in" data-testid="zoom-in">+</button>
            </div>
            <button
              className={radiological ? 'on-toggle' : ''} aria-pressed={radiological} data-testid="convention"
              onClick={() => { setRadiological(!radiological); controller?.setRadiological(!radiological); }}
              title="Radiological: the patient's right on the left of the screen"
            >{radiological ? 'Radiological' : 'Neurological'}</button>
            <label className="check"><input type="checkbox" checked={crosshair} data-testid="crosshair" onChange={(e) => { setCrosshair(e.target.checked); controller?.setCrosshair(e.target.checked); }} /> Crosshair</label>
          </div>
        </>
      )}
      <div className="viewer-body" hidden={!caseId || !summary}>
        <div className="viewer-canvas-wrap">
          <div className="canvas-box">
            <canvas
              ref={canvasRef} className="viewer-canvas" data-testid="viewer-canvas" data-ready={ready ? 'yes' : 'no'}
              data-convention={radiological ? 'radiological' : 'neurological'} tabIndex={0} aria-label={`MRI viewer: ${caseId ?? 'no case'}, ${MODALITY_TEXT[modality]}, ${view}`} role="img"
              onMouseMove={showProbe} onMouseLeave={() => setProbe(null)}
            />
            {letters && ready && (
              <div className="orientation" aria-hidden="true">
                <span className="o-left" data-testid="orientation-left">{letters[0]}</span>
                <span className="o-right" data-testid="orientation-right">{letters[1]}</span>
                <span className="o-top">{letters[2]}</span>
                <span className="o-bottom">{letters[3]}</span>
              </div>
            )}
            {ready && (
              <div className="canvas-source" data-testid="canvas-source">
                {loadedText}{edited ? ' · edited' : ''}
                {compare.with !== 'none' && summary && <> vs {compareText(compare.with, summary)} ({compare.mode === 'outline' ? 'magenta outline' : 'red: only shown, cyan: only compared, orange: other label'})</>}
              </div>
            )}
            {phase === 'error' && <div className="canvas-error" role="alert" data-testid="viewer-error">This case could not be opened: {loadError}</div>}
          </div>
          <div className="slice-bar">
            <button onClick={() => step(-1)} aria-label="Previous slice" data-testid="slice-prev">◀</button>
            <div className="slider-track">
              <input
                type="range" min={0} max={Math.max(0, position.count - 1)} value={position.index} data-testid="slice-slider"
                onChange={(e) => controller?.goToSlice(Number(e.target.value))} aria-label="Slice"
              />
              <div className="slider-flags" aria-hidden="true" data-testid="slider-flags">
                {marks.filter(([key]) => key.startsWith(`${position.axis}:`)).map(([key, m]) => (
                  <span key={key} className={`flag flag-${m}`} style={{ left: `${(100 * Number(key.split(':')[1])) / Math.max(1, position.count - 1)}%` }} />
                ))}
              </div>
            </div>
            <button onClick={() => step(1)} aria-label="Next slice" data-testid="slice-next">▶</button>
            <span className="slice-number" data-testid="slice-number">{position.axis} slice {position.index + 1} / {position.count}</span>
          </div>
          <div className="readout" data-testid="readout" aria-live="off">
            {probe
              ? `x ${probe.mm[0].toFixed(1)} y ${probe.mm[1].toFixed(1)} z ${probe.mm[2].toFixed(1)} mm · voxel ${probe.voxel.join(', ')} · ${MODALITY_TEXT[modality]} ${probe.intensity.toFixed(0)} · label ${probe.label}`
              : 'Move the mouse over the image for position and intensity.'}
            {windowRange && <span className="muted"> · window {windowRange.min.toFixed(0)}–{windowRange.max.toFixed(0)}</span>}
          </div>
        </div>
        {summary && (
          <aside className="viewer-panel" aria-label="Review panel">
            <h3>Mask overlay</h3>
            <select value={choiceOf(loaded)} onChange={(e) => void switchMask(e.target.value as MaskChoice)} data-testid="mask-source" aria-label="Mask shown and edited" disabled={!ready}>
              <option value="none">None (draw new)</option>
              <option value="truth" disabled={!summary.has.truth}>Ground truth</option>
              <option value="prediction" disabled={!summary.has.prediction}>{summary.prediction ? sourceText({ kind: 'prediction', ...summary.prediction }) : 'Model prediction'}</option>
              {versions.map((v) => <option key={v.version} value={`final:${v.version}`}>Final v{v.version}{v.version === chosen ? ' (in use)' : ''}</option>)}
            </select>
            <button onClick={() => void predict()} disabled={!ready} data-testid="predict">Predict with current model</button>
            <h3>Edit mask</h3>
            <div className="segmented" role="group" aria-label="Tool">
              {TOOLS.map((t) => (
                <button key={t.tool} className={tool === t.tool ? 'on' : ''} aria-pressed={tool === t.tool} onClick={() => chooseTool(t.tool)} data-testid={`tool-${t.tool}`} title={t.title}>{t.label}</button>
              ))}
            </div>
            <div className="segmented" role="group" aria-label="Label (keys 1, 2, 4)">
              {LABELS.map((l) => (
                <button key={l.value} className={tool !== 'off' && tool !== 'erase' && penLabel === l.value ? 'on' : ''} aria-pressed={penLabel === l.value} onClick={() => chooseLabel(l.value)} data-testid={`tool-pen-${l.value}`} title={`${l.name} (key ${l.value})`} aria-label={`Label ${l.value} ${l.short}`}>
                  <span className="swatch" style={{ background: `rgb(${l.rgb.join(',')})` }} /> {l.value}
                </button>
              ))}
            </div>
            <div className="row">
              <label className="check">Size
                <select value={penSize} aria-label="Pen size in voxels" data-testid="pen-size" onChange={(e) => { const v = Number(e.target.value); setPenSize(v); controller?.setPenSize(v); }}>
                  {PEN_SIZES.map((n) => <option key={n} value={n}>{n}</option>)}
                </select>
              </label>
              <label className="check" title="Strokes also paint the neighbouring slices within half the pen size; Grow works in 3D">
                <input type="checkbox" checked={brush3D} data-testid="brush-3d" onChange={(e) => { setBrush3D(e.target.checked); controller?.setBrush3D(e.target.checked); }} /> 3D
              </label>
              <button
                onClick={() => { if (!controller?.interpolate()) useUi.setState({ notice: 'Edit two slices at least two apart on this axis, then interpolate between them.', noticeTone: 'info' }); }}
                disabled={!ready} data-testid="interpolate" title="Fill the slices between the last two edited slices on this axis"
              >Interpolate{interpolation ? ` ${interpolation[0] + 1}–${interpolation[1] + 1}` : ''}</button>
            </div>
            <div className="row">
              <button onClick={() => controller?.undo()} data-testid="undo" disabled={!ready || !history.undo} title="Ctrl+Z">Undo</button>
              <button onClick={() => controller?.redo()} data-testid="redo" disabled={!ready || !history.redo} title="Ctrl+Shift+Z">Redo</button>
              <button className="primary" onClick={() => void saveFinal()} disabled={!ready} data-testid="save-final">Save as final mask</button>
            </div>
            {edited && <p className="hint" data-testid="unsaved">Unsaved edits to {loadedText}.</p>}
            {pendingSave && <ConfirmSave pending={pendingSave} onConfirm={() => void saveFinal(pendingSave.warnings)} onCancel={() => setPendingSave(null)} />}
            <h3>Compare with</h3>
            <div className="row">
              <select
                value={compare.with} disabled={!ready} aria-label="Mask to compare with" data-testid="compare-with"
                onChange={(e) => void showComparison({ ...compare, with: e.target.value as MaskChoice })}
              >
                <option value="none">Nothing</option>
                {summary.has.truth && loaded.kind !== 'truth' && <option value="truth">Ground truth</option>}
                {summary.has.prediction && loaded.kind !== 'prediction' && <option value="prediction">Prediction</option>}
                {versions.filter((v) => choiceOf(loaded) !== `final:${v.version}`).map((v) => <option key={v.version} value={`final:${v.version}`}>Final v{v.version}</option>)}
              </select>
              <div className="segmented" role="group" aria-label="Comparison">
                {(['outline', 'difference'] as const).map((mode) => (
                  <button key={mode} className={compare.mode === mode ? 'on' : ''} aria-pressed={compare.mode === mode} disabled={compare.with === 'none'} onClick={() => void showComparison({ ...compare, mode })} data-testid={`compare-${mode}`}>
                    {mode === 'outline' ? 'Outline' : 'Difference'}
                  </button>
                ))}
              </div>
            </div>
            <h3>Review this slice</h3>
            <p data-testid="slice-mark">{currentMark === 'ok' ? 'Marked OK' : currentMark === 'wrong' ? 'Flagged as wrong' : 'Not reviewed'}</p>
            <div className="row">
              <button onClick={() => void mark('ok')} data-testid="mark-ok" title="Key O">OK</button>
              <button onClick={() => void okAndNext()} data-testid="ok-next" title="Key N: mark OK and go to the next unreviewed slice">OK and next</button>
              <button className="danger" onClick={() => void mark('wrong')} data-testid="mark-wrong" title="Key W">Wrong</button>
              <button onClick={() => void mark(null)} disabled={!currentMark}>Clear</button>
            </div>
            <div className="row">
              <button onClick={() => jump('unreviewed')} data-testid="next-unreviewed">Next unreviewed</button>
              <button onClick={() => jump('flagged')} data-testid="next-flagged">Next flagged</button>
            </div>
            <label className="check"><input type="checkbox" checked={tumourOnly} onChange={(e) => setTumourOnly(e.target.checked)} /> only slices with mask</label>
            <p className="muted" data-testid="review-counts">{marks.filter(([, m]) => m === 'ok').length} OK · {marks.filter(([, m]) => m === 'wrong').length} flagged</p>
            <h3>Tumour volume</h3>
            <table className="table compact" data-testid="volumes">
              <tbody>
                <tr><td>Enhancing tumour (ET)</td><td data-testid="volume-et">{volumes.et.toFixed(2)} mL</td></tr>
                <tr><td>Tumour core (TC)</td><td data-testid="volume-tc">{volumes.tc.toFixed(2)} mL</td></tr>
                <tr><td>Whole tumour (WT)</td><td data-testid="volume-wt">{volumes.wt.toFixed(2)} mL</td></tr>
              </tbody>
            </table>
            <h3>Display</h3>
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
            <h3>Final mask versions</h3>
            <ul className="versions" data-testid="versions">
              <li data-testid="version-truth">
                <span>Ground truth{summary.has.truth ? '' : ' (none)'}{chosen === null && summary.has.truth ? ' · in use' : ''}</span>
                {summary.has.truth && chosen !== null && <button onClick={() => void useVersion(null)} data-testid="use-truth">Use</button>}
              </li>
              {[...versions].reverse().map((v) => (
                <li key={v.version} data-testid={`version-${v.version}`} className={v.version === chosen ? 'in-use' : ''}>
                  <span>
                    <b>v{v.version}</b>{v.version === chosen ? ' · in use' : ''} · <ProvenanceText version={v} />
                    <br /><span className="muted">{v.savedBy}, {formatTime(v.savedAt)}</span>
                  </span>
                  {v.version !== chosen && <button onClick={() => void useVersion(v.version)} data-testid={`use-version-${v.version}`}>Use</button>}
                </li>
              ))}
            </ul>
          </aside>
        )}
      </div>
    </section>
  );
}

/** Plausibility warnings before a save: the save goes ahead only with a confirmation naming each one. */
function ConfirmSave({ pending, onConfirm, onCancel }: { pending: { comparison: MaskComparison; warnings: MaskWarning[] }; onConfirm: () => void; onCancel: () => void }) {
  const { comparison, warnings } = pending;
  return (
    <div className="confirm-save" role="alertdialog" aria-labelledby="confirm-save-title" data-testid="confirm-save">
      <h4 id="confirm-save-title">Check before saving as final</h4>
      <ul>{warnings.map((w) => <li key={w.code} data-testid={`warning-${w.code}`}>{w.message}</li>)}</ul>
      <p className="muted">
        Whole tumour {comparison.sourceVolumesMl.wt.toFixed(1)} → {comparison.volumesMl.wt.toFixed(1)} mL
        {comparison.diceVsSource && <>; Dice against the source ET {formatScore(comparison.diceVsSource.et)}, TC {formatScore(comparison.diceVsSource.tc)}, WT {formatScore(comparison.diceVsSource.wt)}</>}.
      </p>
      <div className="row">
        <button className="danger" onClick={onConfirm} data-testid="confirm-save-anyway">Save although {warnings.map((w) => w.code.replace('-', ' ')).join(', ')}</button>
        <button onClick={onCancel} data-testid="confirm-save-cancel">Keep editing</button>
      </div>
    </div>
  );
}
