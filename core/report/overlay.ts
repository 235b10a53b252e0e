/**
 * Axial slice pictures for the report: an MRI slice in grey with a BraTS mask blended on top in the
 * viewer's colours (SPEC section 2: 1 blue, 2 green, 4 yellow), panels placed side by side.
 */

/** RGB of each BraTS label in the viewer. */
export const LABEL_COLOURS: Readonly<Record<number, readonly [number, number, number]>> = {
  1: [40, 90, 255],
  2: [30, 200, 60],
  4: [255, 225, 0],
};

const OVERLAY_ALPHA = 0.55;

/** One axial slice: `intensity` and optional `labels` are width * height, index = x + width * y. */
export interface SlicePanel {
  intensity: ArrayLike<number>;
  labels?: ArrayLike<number>;
  width: number;
  height: number;
}

export interface RgbImage { rgb: Uint8Array; width: number; height: number }

/**
 * Renders panels left to right with a gap, each scaled by an integer factor (nearest neighbour) and
 * flipped vertically so anterior is up as radiologists expect for RAS-oriented BraTS volumes.
 * Intensities are windowed to the slice's 1st..99th percentile.
 */
export function renderPanels(panels: SlicePanel[], scale = 2, gap = 6): RgbImage {
  if (panels.length === 0) throw new RangeError('no panels to render');
  const height = Math.max(...panels.map((p) => p.height)) * scale;
  const width = panels.reduce((w, p) => w + p.width * scale, 0) + gap * (panels.length - 1);
  const rgb = new Uint8Array(width * height * 3).fill(255);
  let left = 0;
  for (const panel of panels) {
    const [lo, hi] = window(panel.intensity);
    for (let y = 0; y < panel.height * scale; y++) {
      const sy = panel.height - 1 - Math.floor(y / scale);
      for (let x = 0; x < panel.width * scale; x++) {
        const src = Math.floor(x / scale) + panel.width * sy;
        const grey = hi > lo ? Math.round((255 * Math.min(Math.max(panel.intensity[src] - lo, 0), hi - lo)) / (hi - lo)) : 0;
        const colour = panel.labels ? LABEL_COLOURS[panel.labels[src]] : undefined;
        const at = ((left + x) + width * y) * 3;
        for (let c = 0; c < 3; c++) {
          rgb[at + c] = colour ? Math.round(grey * (1 - OVERLAY_ALPHA) + colour[c] * OVERLAY_ALPHA) : grey;
        }
      }
    }
    left += panel.width * scale + gap;
  }
  return { rgb, width, height };
}

function window(values: ArrayLike<number>): [number, number] {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))];
  return [at(0.01), at(0.99)];
}

/** Extracts axial slice k of a volume in NIfTI order (index = i + nx * (j + ny * k)) as a panel-sized array. */
export function axialSlice(volume: ArrayLike<number>, dims: readonly [number, number, number], k: number): Float32Array {
  const [nx, ny] = dims;
  const out = new Float32Array(nx * ny);
  const offset = nx * ny * k;
  for (let p = 0; p < out.length; p++) out[p] = volume[offset + p];
  return out;
}

/** Coronal slice j (rows k, columns i) of a volume in NIfTI order, as a panel-sized array (width nx, height nz). */
export function coronalSlice(volume: ArrayLike<number>, dims: readonly [number, number, number], j: number): Float32Array {
  const [nx, ny, nz] = dims;
  const out = new Float32Array(nx * nz);
  for (let k = 0; k < nz; k++) for (let i = 0; i < nx; i++) out[i + nx * k] = volume[i + nx * (j + ny * k)];
  return out;
}

/** Images one below the other, left-aligned on white, `gap` pixels apart. */
export function stackRows(images: RgbImage[], gap = 6): RgbImage {
  const width = Math.max(...images.map((m) => m.width));
  const height = images.reduce((h, m) => h + m.height, 0) + gap * (images.length - 1);
  const rgb = new Uint8Array(width * height * 3).fill(255);
  let top = 0;
  for (const m of images) {
    for (let y = 0; y < m.height; y++) rgb.set(m.rgb.subarray(y * m.width * 3, (y + 1) * m.width * 3), ((top + y) * width) * 3);
    top += m.height + gap;
  }
  return { rgb, width, height };
}

/** The axial slice with the most voxels of `labels` set (ties: the lowest k); 0 when there are none. */
export function largestTumourSlice(labels: ArrayLike<number>, dims: readonly [number, number, number]): number {
  const [nx, ny, nz] = dims;
  let best = 0;
  let bestCount = -1;
  for (let k = 0; k < nz; k++) {
    let count = 0;
    for (let p = k * nx * ny, end = p + nx * ny; p < end; p++) if (labels[p] !== 0) count++;
    if (count > bestCount) {
      best = k;
      bestCount = count;
    }
  }
  return best;
}
