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
/** What lies under the mouse: world position in mm, voxel (RAS grid), image intensity and mask label. */
export interface Probe { mm: [number, number, number]; voxel: [number, number, number]; intensity: number; label: number }

export class ViewerController {
  readonly nv: Niivue;
  private view: ViewMode = 'axial';
  private visible: Record<LabelValue, boolean> = { 1: true, 2: true, 4: true };
  private onMove: (position: SlicePosition) => void = () => undefined;
  private onEdit: () => void = () => undefined;
  private attached: Promise<void> | null = null;

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
    this.nv.onDrawingChanged = () => this.onEdit();
  }

  /** Attaches once; later calls (the viewer shown again) only wait for the first. */
  attach(canvas: HTMLCanvasElement): Promise<void> {
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
    this.applyLut();
    this.onEdit();
  }

  setView(view: ViewMode): void {
    this.view = view;
    this.nv.opts.isOrientationTextVisible = view === 'multiplanar';
    this.nv.setSliceType(SLICE_TYPES[view]);
    this.onMove(this.position());
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

  setTool(tool: 'off' | 'pen' | 'erase', label: LabelValue): void {
    if (tool === 'off') {
      this.nv.opts.drawingEnabled = false;
      this.nv.drawScene();
      return;
    }
    this.nv.opts.drawingEnabled = true;
    this.nv.setPenValue(tool === 'erase' ? 0 : label, false);
  }

  undo(): void {
    this.nv.drawUndo();
    this.onEdit();
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
