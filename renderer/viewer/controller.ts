/**
 * Wraps Niivue for the review workflow. The mask (ground truth, prediction or final) is loaded as Niivue's
 * drawing layer, so the overlay the reviewer sees is exactly what the pen, eraser and undo edit and what
 * "Save as final" exports. Slices are counted along the axis of the current 2D view in the volume's
 * RAS-oriented voxel grid, the grid Niivue displays.
 */
import { Niivue, NVImage, SLICE_TYPE } from '@niivue/niivue';
import type { Axis } from '../../preload/api.js';
import { drawLut, type LabelValue } from './labels.js';

export type ViewMode = Axis | 'multiplanar';
const SLICE_TYPES: Record<ViewMode, SLICE_TYPE> = {
  axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL, multiplanar: SLICE_TYPE.MULTIPLANAR,
};
const AXIS_INDEX: Record<Axis, number> = { sagittal: 0, coronal: 1, axial: 2 };

export interface SlicePosition { axis: Axis; index: number; count: number }

export class ViewerController {
  readonly nv: Niivue;
  private view: ViewMode = 'axial';
  private visible: Record<LabelValue, boolean> = { 1: true, 2: true, 4: true };
  private onMove: (position: SlicePosition) => void = () => undefined;
  private onEdit: () => void = () => undefined;

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
    });
    this.nv.onLocationChange = () => this.onMove(this.position());
    this.nv.onDrawingChanged = () => this.onEdit();
  }

  async attach(canvas: HTMLCanvasElement): Promise<void> {
    await this.nv.attachToCanvas(canvas);
    this.nv.drawLut = drawLut(this.visible);
    this.nv.setDrawOpacity(0.6);
  }

  subscribe(onMove: (position: SlicePosition) => void, onEdit: () => void): void {
    this.onMove = onMove;
    this.onEdit = onEdit;
  }

  /**
   * Replaces the background image, keeping the mask being edited (same case, same grid). The swap is done in
   * place so Niivue re-uploads its textures once (each upload is seconds on software-rendered WebGL).
   */
  async showImage(bytes: Uint8Array, name: string): Promise<void> {
    const image = await NVImage.loadFromUrl({ url: fileName(bytes, name), buffer: toArrayBuffer(bytes), colormap: 'gray' });
    const keptDrawing = this.nv.drawBitmap;
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
    this.nv.setSliceType(SLICE_TYPES[this.view]);
    this.onMove(this.position());
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
    this.nv.setSliceType(SLICE_TYPES[view]);
    this.onMove(this.position());
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

  /** Slice indices (along `axis`) that contain any visible mask voxel. */
  slicesWithMask(axis: Axis): Set<number> {
    const out = new Set<number>();
    const bitmap = this.nv.drawBitmap;
    const dims = this.dimsRAS();
    if (!bitmap || !dims) return out;
    const [nx, ny] = dims;
    const a = AXIS_INDEX[axis];
    for (let v = 0; v < bitmap.length; v++) {
      if (bitmap[v] === 0) continue;
      const x = v % nx;
      const y = Math.floor(v / nx) % ny;
      const z = Math.floor(v / (nx * ny));
      out.add(a === 0 ? x : a === 1 ? y : z);
    }
    return out;
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
