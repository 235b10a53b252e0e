/**
 * Wraps the app's one Niivue instance (one WebGL context for the app's lifetime) for the review workflow.
 * The mask (ground truth, prediction, a final version or blank) is loaded as Niivue's drawing layer, so the
 * overlay the reviewer sees is exactly what the pen, eraser and undo edit and what "Save as final" exports.
 * Slices are counted along the axis of the current 2D view in the volume's RAS-oriented voxel grid, the grid
 * Niivue displays. Display: radiological convention by default, window/level presets, zoom and pan.
 */
import { DRAG_MODE, Niivue, NVImage, SLICE_TYPE } from '@niivue/niivue';
import type { Axis } from '../../preload/api.js';
import { drawLut, type LabelValue } from './labels.js';
import { presetWindow, type WindowPreset } from './window.js';

export type ViewMode = Axis | 'multiplanar';
const SLICE_TYPES: Record<ViewMode, SLICE_TYPE> = {
  axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL, multiplanar: SLICE_TYPE.MULTIPLANAR,
};
const AXIS_INDEX: Record<Axis, number> = { sagittal: 0, coronal: 1, axial: 2 };
/** Zoom step of the + / − buttons, and the range of the 2D zoom (1 = fit). */
export const ZOOM_STEP = 1.25;
const ZOOM_RANGE = [1, 8] as const;

export interface SlicePosition { axis: Axis; index: number; count: number }
/**
 * Editing tools: the label pen, the filled pen (draws an outline and fills what it encloses), the eraser and
 * region growing (click a voxel: the connected region of similar intensity gets the label).
 */
export type Tool = 'off' | 'pen' | 'fill' | 'erase' | 'grow';
/** How the comparison mask is shown over the edited one: its outline, or where the two differ. */
export type CompareMode = 'outline' | 'difference';
/** One edit, as the voxels it changed: undo writes `before` back, redo `after`. */
interface Change { index: Uint32Array; before: Uint8Array; after: Uint8Array }
const MAX_HISTORY = 50;
/** Colours of the comparison layer: the reference's outline; the difference (only shown, only reference, other label). */
const OUTLINE_RGB = [255, 0, 255];
const DIFFERENCE_RGB: Record<number, number[]> = { 1: [255, 40, 40], 2: [0, 220, 255], 3: [255, 150, 0] };
/** What lies under the mouse: world position in mm, voxel (RAS grid), image intensity and mask label. */
export interface Probe { mm: [number, number, number]; voxel: [number, number, number]; intensity: number; label: number }

export class ViewerController {
  readonly nv: Niivue;
  private view: ViewMode = 'axial';
  private visible: Record<LabelValue, boolean> = { 1: true, 2: true, 4: true };
  private onMove: (position: SlicePosition) => void = () => undefined;
  private onEdit: () => void = () => undefined;
  private attached: Promise<void> | null = null;
  private history: Change[] = [];
  private future: Change[] = [];
  /** The drawing when the current stroke began. */
  private strokeStart: Uint8Array | null = null;
  private brush3D = false;
  /** The comparison shown, redrawn when the view changes (an outline is drawn in the plane of the view). */
  private comparison: { reference: Uint8Array; mode: CompareMode } | null = null;
  /** Slices (along the axis drawn on) of the recent strokes, newest last: interpolation fills between the last two. */
  private editedSlices: Array<{ axis: Axis; index: number }> = [];

  constructor() {
    this.nv = new Niivue({
      backColor: [0.07, 0.075, 0.09, 1],
      show3Dcrosshair: false,
      crosshairColor: [1, 0.3, 0.3, 0.6],
      isColorbar: false,
      dragAndDropEnabled: false,
      drawingEnabled: false,
      penSize: 3,
      isNearestInterpolation: true,
      isRadiologicalConvention: true,
      // Orientation letters are drawn by the page around single views; Niivue labels only the multiplanar tiles.
      isOrientationTextVisible: false,
      // Right-drag pans and the wheel zooms in 2D; contrast has explicit presets instead of a hidden drag.
      dragMode: DRAG_MODE.pan,
    });
    this.nv.onLocationChange = () => this.onMove(this.position());
    this.nv.onDrawingChanged = (action) => {
      if (action === 'draw') this.endEdit();
      this.onEdit();
    };
    // Region growing applies its fill on click without a drawing-changed event.
    this.nv.onClickToSegment = () => {
      this.endEdit();
      this.onEdit();
    };
  }

  /** Attaches once; later calls (the viewer shown again) only wait for the first. */
  attach(canvas: HTMLCanvasElement): Promise<void> {
    // Each stroke starts on pointer down; its change is recorded when Niivue reports the drawing changed.
    canvas.addEventListener('pointerdown', () => {
      if (this.nv.opts.drawingEnabled) this.beginEdit();
    }, { capture: true });
    this.attached ??= this.nv.attachToCanvas(canvas).then(() => {
      this.nv.drawLut = drawLut(this.visible);
      this.nv.setDrawOpacity(0.6);
    });
    return this.attached;
  }

  subscribe(onMove: (position: SlicePosition) => void, onEdit: () => void): void {
    this.onMove = onMove;
    this.onEdit = onEdit;
  }

  /** The canvas was hidden (another screen) and is shown again: size it to its box and redraw. */
  reveal(): void {
    this.nv.resizeListener();
  }

  /**
   * Replaces the background image, keeping the mask being edited (same case, same grid) and the slice shown.
   * The swap is done in place so Niivue re-uploads its textures once (each upload is seconds on software WebGL).
   */
  async showImage(bytes: Uint8Array, name: string, preset: WindowPreset): Promise<void> {
    const image = await NVImage.loadFromUrl({ url: fileName(bytes, name), buffer: toArrayBuffer(bytes), colormap: 'gray' });
    const window = presetWindow(image, preset);
    image.cal_min = window.min;
    image.cal_max = window.max;
    const keptDrawing = this.nv.drawBitmap;
    const keptCrosshair = this.nv.volumes.length > 0 && voxelCount(image) === voxelCount(this.nv.volumes[0]) ? [...this.nv.scene.crosshairPos] : null;
    if (this.nv.volumes.length === 0) {
      this.nv.addVolume(image);
    } else {
      this.nv.volumes[0] = image;
      this.nv.setVolume(image, 0);
    }
    if (keptDrawing && keptDrawing.length === voxelCount(image)) {
      this.nv.drawBitmap = keptDrawing;
      this.nv.refreshDrawing(true);
    }
    if (keptCrosshair) this.nv.scene.crosshairPos = keptCrosshair as never;
    this.nv.setSliceType(SLICE_TYPES[this.view]);
    this.onMove(this.position());
  }

  /** Applies a window/level preset to the image shown; returns the window. */
  setWindow(preset: WindowPreset): { min: number; max: number } {
    const image = this.nv.back;
    if (!image) return { min: 0, max: 0 };
    const window = presetWindow(image, preset);
    image.cal_min = window.min;
    image.cal_max = window.max;
    this.nv.updateGLVolume();
    return window;
  }

  window(): { min: number; max: number } | null {
    const image = this.nv.back;
    return image ? { min: image.cal_min ?? 0, max: image.cal_max ?? 0 } : null;
  }

  /** Loads a label volume as the editable overlay; null shows an empty overlay to draw on. */
  async showMask(bytes: Uint8Array | null, name: string): Promise<void> {
    if (!bytes) {
      this.nv.closeDrawing();
      this.nv.createEmptyDrawing();
    } else {
      const mask = await NVImage.loadFromUrl({ url: fileName(bytes, name), buffer: toArrayBuffer(bytes) });
      if (!this.nv.loadDrawing(mask)) throw new Error('The mask does not have the same size as the image.');
    }
    this.history = [];
    this.future = [];
    this.editedSlices = [];
    this.applyLut();
    this.onEdit();
  }

  setView(view: ViewMode): void {
    this.view = view;
    this.nv.opts.isOrientationTextVisible = view === 'multiplanar';
    this.nv.setSliceType(SLICE_TYPES[view]);
    this.onMove(this.position());
    if (this.comparison?.mode === 'outline') void this.showComparison(this.comparison.reference, 'outline');
  }

  setRadiological(radiological: boolean): void {
    this.nv.setRadiologicalConvention(radiological);
  }

  radiological(): boolean {
    return this.nv.opts.isRadiologicalConvention;
  }

  setCrosshair(visible: boolean): void {
    this.nv.setCrosshairWidth(visible ? 1 : 0);
  }

  /** Multiplies the 2D zoom (1 = fit), keeping the pan; returns the new zoom. */
  zoom(factor: number | null): number {
    const [x, y, z, current] = this.nv.scene.pan2Dxyzmm;
    const next = factor === null ? 1 : Math.min(ZOOM_RANGE[1], Math.max(ZOOM_RANGE[0], current * factor));
    this.nv.setPan2Dxyzmm(factor === null ? [0, 0, 0, 1] : [x, y, z, next]);
    return next;
  }

  setOpacity(opacity: number): void {
    this.nv.setDrawOpacity(opacity);
  }

  setLabelVisible(label: LabelValue, visible: boolean): void {
    this.visible = { ...this.visible, [label]: visible };
    this.applyLut();
  }

  /** Only the colour table changes: refresh it without Niivue's full volume re-upload (setDrawColormap). */
  private applyLut(): void {
    this.nv.drawLut = drawLut(this.visible);
    this.nv.refreshColormaps();
    this.nv.drawScene();
  }

  /** Axis stepped by the slider and keys: the 2D view's own axis, axial in multiplanar. */
  axis(): Axis {
    return this.view === 'multiplanar' ? 'axial' : this.view;
  }

  viewMode(): ViewMode {
    return this.view;
  }

  position(): SlicePosition {
    const axis = this.axis();
    const dims = this.dimsRAS();
    if (!dims || !this.nv.back) return { axis, index: 0, count: 0 };
    const vox = this.nv.frac2vox(this.nv.scene.crosshairPos as never);
    const i = AXIS_INDEX[axis];
    return { axis, index: Math.round(vox[i]), count: dims[i] };
  }

  step(delta: number): void {
    const axis = AXIS_INDEX[this.axis()];
    const move = [0, 0, 0];
    move[axis] = delta;
    this.nv.moveCrosshairInVox(move[0], move[1], move[2]);
  }

  goToSlice(index: number): void {
    const current = this.position();
    if (current.count === 0) return;
    this.step(Math.max(0, Math.min(current.count - 1, index)) - current.index);
  }

  /** Mask voxels per slice along `axis` (any label). */
  maskPerSlice(axis: Axis): number[] {
    const bitmap = this.nv.drawBitmap;
    const dims = this.dimsRAS();
    if (!bitmap || !dims) return [];
    const [nx, ny] = dims;
    const a = AXIS_INDEX[axis];
    const counts = new Array<number>(dims[a]).fill(0);
    for (let v = 0; v < bitmap.length; v++) {
      if (bitmap[v] === 0) continue;
      const x = v % nx;
      const y = Math.floor(v / nx) % ny;
      const z = Math.floor(v / (nx * ny));
      counts[a === 0 ? x : a === 1 ? y : z]++;
    }
    return counts;
  }

  /** Slice indices (along `axis`) that contain any mask voxel. */
  slicesWithMask(axis: Axis): Set<number> {
    const out = new Set<number>();
    this.maskPerSlice(axis).forEach((n, i) => n > 0 && out.add(i));
    return out;
  }

  /** Moves to the slice with the most tumour along the current axis (stays put for an empty mask). */
  goToLargestTumourSlice(): void {
    const counts = this.maskPerSlice(this.axis());
    let best = -1;
    counts.forEach((n, i) => {
      if (n > 0 && (best < 0 || n > counts[best])) best = i;
    });
    if (best >= 0) this.goToSlice(best);
  }

  /** Intensity, label and position under a mouse event on the canvas; null outside the image. */
  probe(clientX: number, clientY: number): Probe | null {
    const canvas = this.nv.canvas;
    const image = this.nv.back;
    if (!canvas || !image || this.view === 'multiplanar') return null;
    const rect = canvas.getBoundingClientRect();
    const scale = canvas.width / Math.max(1, rect.width);
    const frac = this.nv.canvasPos2frac([(clientX - rect.left) * scale, (clientY - rect.top) * scale]);
    if (frac[0] < 0 || frac[0] > 1 || frac[1] < 0 || frac[1] > 1 || frac[2] < 0 || frac[2] > 1) return null;
    const mm = this.nv.frac2mm(frac);
    const vox = this.nv.frac2vox(frac);
    const dims = this.dimsRAS()!;
    const [x, y, z] = [0, 1, 2].map((i) => Math.max(0, Math.min(dims[i] - 1, Math.round(vox[i])))) as [number, number, number];
    const label = this.nv.drawBitmap?.[x + y * dims[0] + z * dims[0] * dims[1]] ?? 0;
    return { mm: [mm[0], mm[1], mm[2]], voxel: [x, y, z], intensity: image.getValue(x, y, z), label };
  }

  setTool(tool: Tool, label: LabelValue): void {
    this.nv.opts.drawingEnabled = tool !== 'off';
    this.nv.opts.clickToSegment = tool === 'grow';
    this.nv.opts.clickToSegmentIs2D = !this.brush3D;
    this.nv.opts.clickToSegmentAutoIntensity = true;
    if (tool === 'off') {
      this.nv.drawScene();
      return;
    }
    this.nv.setPenValue(tool === 'erase' ? 0 : label, tool === 'fill');
  }

  setPenSize(size: number): void {
    this.nv.opts.penSize = size;
  }

  /** 3D brush: each stroke also paints the slices within half the pen size on either side. */
  setBrush3D(on: boolean): void {
    this.brush3D = on;
    this.nv.opts.clickToSegmentIs2D = !on;
  }

  private beginEdit(): void {
    this.strokeStart = this.nv.drawBitmap ? this.nv.drawBitmap.slice() : null;
  }

  /** Records what the edit since beginEdit changed (extended through neighbouring slices by the 3D brush). */
  private endEdit(): void {
    const before = this.strokeStart;
    this.strokeStart = null;
    const now = this.nv.drawBitmap;
    if (!before || !now || before.length !== now.length) return;
    let changed = changedVoxels(before, now);
    if (this.brush3D && changed.length > 0) {
      this.extendThroughSlices(changed, now);
      changed = changedVoxels(before, now);
    }
    const index = Uint32Array.from(changed);
    if (index.length === 0) return;
    this.noteEditedSlice(index[0]);
    this.history.push({ index, before: Uint8Array.from(index, (i) => before[i]), after: Uint8Array.from(index, (i) => now[i]) });
    if (this.history.length > MAX_HISTORY) this.history.shift();
    this.future = [];
  }

  private extendThroughSlices(changed: number[], bitmap: Uint8Array): void {
    const dims = this.dimsRAS();
    if (!dims) return;
    const [nx, ny] = dims;
    const a = AXIS_INDEX[this.axis()];
    const stride = a === 0 ? 1 : a === 1 ? nx : nx * ny;
    const half = Math.floor(this.nv.opts.penSize / 2);
    for (const v of changed) {
      const coord = a === 0 ? v % nx : a === 1 ? Math.floor(v / nx) % ny : Math.floor(v / (nx * ny));
      for (let d = -half; d <= half; d++) {
        if (d === 0 || coord + d < 0 || coord + d >= dims[a]) continue;
        bitmap[v + d * stride] = bitmap[v];
      }
    }
    this.nv.refreshDrawing(true);
  }

  private noteEditedSlice(voxel: number): void {
    const dims = this.dimsRAS();
    if (!dims) return;
    const axis = this.axis();
    const a = AXIS_INDEX[axis];
    const index = a === 0 ? voxel % dims[0] : a === 1 ? Math.floor(voxel / dims[0]) % dims[1] : Math.floor(voxel / (dims[0] * dims[1]));
    this.editedSlices = [...this.editedSlices.filter((s) => s.axis === axis && s.index !== index), { axis, index }].slice(-8);
  }

  /** The two most recently edited slices along the current axis, lowest first, when slices lie between them. */
  interpolationRange(): [number, number] | null {
    const axis = this.axis();
    const recent = this.editedSlices.filter((s) => s.axis === axis).slice(-2).map((s) => s.index).sort((x, y) => x - y);
    return recent.length === 2 && recent[1] - recent[0] >= 2 ? [recent[0], recent[1]] : null;
  }

  /**
   * Fills the slices between the last two edited slices along the current axis, label by label (Niivue's
   * intensity-guided interpolation; it only adds labels, existing ones between stay unless overdrawn).
   */
  interpolate(): boolean {
    const range = this.interpolationRange();
    if (!range) return false;
    this.beginEdit();
    this.nv.interpolateMaskSlices(range[0], range[1], { sliceType: SLICE_TYPES[this.axis()] });
    this.endEdit();
    this.onEdit();
    return true;
  }

  undo(): boolean {
    const change = this.history.pop();
    if (!change) return false;
    this.apply(change, change.before);
    this.future.push(change);
    return true;
  }

  redo(): boolean {
    const change = this.future.pop();
    if (!change) return false;
    this.apply(change, change.after);
    this.history.push(change);
    return true;
  }

  canUndo(): boolean {
    return this.history.length > 0;
  }

  canRedo(): boolean {
    return this.future.length > 0;
  }

  private apply(change: Change, values: Uint8Array): void {
    const bitmap = this.nv.drawBitmap;
    if (!bitmap) return;
    for (let k = 0; k < change.index.length; k++) bitmap[change.index[k]] = values[k];
    this.nv.refreshDrawing(true);
    this.onEdit();
  }

  /**
   * Shows another mask over the edited one for comparison: its outline, or the voxels where the two differ
   * (red: only in the edited mask; cyan: only in the other; orange: both, with different labels). null hides it.
   */
  async showComparison(reference: Uint8Array | null, mode: CompareMode): Promise<void> {
    while (this.nv.volumes.length > 1) this.nv.removeVolumeByIndex(1);
    this.comparison = reference ? { reference, mode } : null;
    if (!reference) {
      this.nv.drawScene();
      return;
    }
    const image = await NVImage.loadFromUrl({ url: fileName(reference, 'reference'), buffer: toArrayBuffer(reference) });
    if (mode === 'outline') {
      // The native axis that runs across the view's slices (BraTS files are stored LPS: no permutation, two flips).
      const ras = AXIS_INDEX[this.axis()];
      const perm = image.permRAS ?? [1, 2, 3];
      const across = Math.max(0, perm.findIndex((p) => Math.abs(p) - 1 === ras));
      const dims = image.hdr!.dims;
      image.img = outlineInPlane(image.img as ArrayLike<number>, [dims[1], dims[2], dims[3]], across) as never;
    } else {
      const edited = await this.exportMask();
      const current = await NVImage.loadFromUrl({ url: fileName(edited, 'edited'), buffer: toArrayBuffer(edited) });
      const ref = image.img as ArrayLike<number>;
      const mine = current.img as ArrayLike<number>;
      const diff = new Uint8Array(ref.length);
      for (let i = 0; i < ref.length; i++) {
        if (ref[i] === mine[i]) continue;
        diff[i] = ref[i] === 0 ? 1 : mine[i] === 0 ? 2 : 3;
      }
      image.img = diff as never;
    }
    image.setColormapLabel(labelColormap(mode === 'outline' ? { 1: OUTLINE_RGB, 2: OUTLINE_RGB, 4: OUTLINE_RGB } : DIFFERENCE_RGB));
    this.nv.addVolume(image);
  }

  labels(): Uint8Array | null {
    return this.nv.drawBitmap;
  }

  voxelVolumeMm3(): number {
    const pix = this.nv.back?.hdr?.pixDims;
    return pix ? Math.abs(pix[1] * pix[2] * pix[3]) : 1;
  }

  /** The edited mask as a NIfTI file in the image's own voxel order (Niivue undoes its RAS reorientation). */
  async exportMask(): Promise<Uint8Array> {
    const bytes = await this.nv.saveImage({ filename: '', isSaveDrawing: true, volumeByIndex: 0 });
    if (!(bytes instanceof Uint8Array)) throw new Error('There is no mask to save.');
    return bytes;
  }

  private dimsRAS(): number[] | null {
    const dims = this.nv.back?.dimsRAS;
    return dims ? [dims[1], dims[2], dims[3]] : null;
  }
}

/** Labelled voxels with a differently labelled neighbour within the plane across axis `across` (its outline there). */
function outlineInPlane(labels: ArrayLike<number>, dims: [number, number, number], across: number): Uint8Array {
  const [nx, ny, nz] = dims;
  const stride = [1, nx, nx * ny];
  const inPlane = [0, 1, 2].filter((a) => a !== across);
  const out = new Uint8Array(labels.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const v = x + y * nx + z * nx * ny;
        const label = labels[v];
        if (label === 0) continue;
        const coord = [x, y, z];
        const edge = inPlane.some((a) => coord[a] === 0 || coord[a] === dims[a] - 1
          || labels[v - stride[a]] !== label || labels[v + stride[a]] !== label);
        if (edge) out[v] = label;
      }
    }
  }
  return out;
}

function changedVoxels(before: Uint8Array, now: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < now.length; i++) if (now[i] !== before[i]) out.push(i);
  return out;
}

/** A Niivue label colour map with the given label colours, everything else transparent. */
function labelColormap(colours: Record<number, number[]>): { R: number[]; G: number[]; B: number[]; A: number[]; I: number[] } {
  const max = Math.max(...Object.keys(colours).map(Number));
  const cm = { R: [] as number[], G: [] as number[], B: [] as number[], A: [] as number[], I: [] as number[] };
  for (let i = 0; i <= max; i++) {
    const rgb = colours[i];
    cm.R.push(rgb?.[0] ?? 0);
    cm.G.push(rgb?.[1] ?? 0);
    cm.B.push(rgb?.[2] ?? 0);
    cm.A.push(rgb ? 255 : 0);
    cm.I.push(i);
  }
  return cm;
}

function voxelCount(image: NVImage): number {
  const d = image.dimsRAS ?? [0, 0, 0, 0];
  return d[1] * d[2] * d[3];
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** Niivue picks the decoder by extension; gzip is recognised by its magic bytes. */
function fileName(bytes: Uint8Array, stem: string): string {
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? `${stem}.nii.gz` : `${stem}.nii`;
}
