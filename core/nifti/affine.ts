/**
 * Voxel-to-world affine maths for NIfTI headers, following nibabel so that FedSeg and nibabel
 * always agree on where a voxel is:
 *  - qform: quaternion (b, c, d; a = sqrt(1 - b² - c² - d²), clamped at 0) times pixdim, with
 *    qfac = -1 when pixdim[0] < 0 (else 1, the standard's rule for 0) applied to the k axis;
 *  - fallback (no sform, no qform): nibabel's `shape_zoom_affine` — x flipped, origin at the
 *    volume centre — the same as nibabel's `get_base_affine`.
 */
export type Affine = number[][];

export function identityAffine(): Affine {
  return [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
}

export interface QuaternionParams {
  b: number; c: number; d: number;
  offset: [number, number, number];
  /** pixdim[1..3] */
  zooms: [number, number, number];
  /** pixdim[0] */
  qfac: number;
}

export function qformToAffine(q: QuaternionParams): Affine {
  const w2 = 1 - (q.b * q.b + q.c * q.c + q.d * q.d);
  const [w, x, y, z] = [w2 > 0 ? Math.sqrt(w2) : 0, q.b, q.c, q.d];
  const n = w * w + x * x + y * y + z * z;
  const s = n < Number.EPSILON ? 0 : 2 / n;
  const [X, Y, Z] = [x * s, y * s, z * s];
  const r = n < Number.EPSILON
    ? [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    : [
      [1 - (y * Y + z * Z), x * Y - w * Z, x * Z + w * Y],
      [x * Y + w * Z, 1 - (x * X + z * Z), y * Z - w * X],
      [x * Z - w * Y, y * Z + w * X, 1 - (x * X + y * Y)],
    ];
  const vox = [q.zooms[0], q.zooms[1], q.zooms[2] * (q.qfac < 0 ? -1 : 1)];
  const out = identityAffine();
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) out[row][col] = r[row][col] * vox[col];
    out[row][3] = q.offset[row];
  }
  return out;
}

/** nibabel's `shape_zoom_affine(shape, zooms, x_flip=True)`: used when neither sform nor qform is set. */
export function baseAffine(dims: readonly number[], pixdim: readonly number[]): Affine {
  const out = identityAffine();
  for (let axis = 0; axis < 3; axis++) {
    const size = dims[axis] ?? 1;
    const zoom = (pixdim[axis] ?? 1) * (axis === 0 ? -1 : 1);
    out[axis][axis] = zoom;
    out[axis][3] = -((size - 1) / 2) * zoom;
  }
  return out;
}

export interface QformEncoding {
  /** Quaternion b, c, d, or null when the affine's 3x3 part is not zooms times a rotation (shears). */
  quaternion: { b: number; c: number; d: number; qfac: 1 | -1 } | null;
  /** Column norms of the 3x3 part: the voxel sizes pixdim[1..3]. */
  zooms: [number, number, number];
  offset: [number, number, number];
}

/** Splits an affine into voxel sizes, qfac and a rotation quaternion (as nibabel's `set_qform`). */
export function affineToQform(affine: Affine): QformEncoding {
  const zooms = [0, 1, 2].map((col) => Math.hypot(affine[0][col], affine[1][col], affine[2][col])) as [number, number, number];
  const offset: [number, number, number] = [affine[0][3], affine[1][3], affine[2][3]];
  if (zooms.some((z) => !(z > 0))) return { quaternion: null, zooms, offset };
  const r = [0, 1, 2].map((row) => [0, 1, 2].map((col) => affine[row][col] / zooms[col]));
  const qfac: 1 | -1 = det3(r) > 0 ? 1 : -1;
  if (qfac < 0) for (const row of r) row[2] = -row[2];
  if (!isRotation(r)) return { quaternion: null, zooms, offset };
  const [w, b, c, d] = rotationToQuaternion(r);
  const sign = w < 0 ? -1 : 1;
  return { quaternion: { b: b * sign, c: c * sign, d: d * sign, qfac }, zooms, offset };
}

function det3(m: number[][]): number {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
    - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
    + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

function isRotation(r: number[][]): boolean {
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const dot = r[0][i] * r[0][j] + r[1][i] * r[1][j] + r[2][i] * r[2][j];
      if (Math.abs(dot - (i === j ? 1 : 0)) > 1e-5) return false;
    }
  }
  return true;
}

/** Shepperd's method; returns [w, x, y, z]. */
function rotationToQuaternion(r: number[][]): [number, number, number, number] {
  const trace = r[0][0] + r[1][1] + r[2][2];
  if (trace > 0) {
    const s = 0.5 / Math.sqrt(trace + 1);
    return [0.25 / s, (r[2][1] - r[1][2]) * s, (r[0][2] - r[2][0]) * s, (r[1][0] - r[0][1]) * s];
  }
  if (r[0][0] > r[1][1] && r[0][0] > r[2][2]) {
    const s = 2 * Math.sqrt(1 + r[0][0] - r[1][1] - r[2][2]);
    return [(r[2][1] - r[1][2]) / s, 0.25 * s, (r[0][1] + r[1][0]) / s, (r[0][2] + r[2][0]) / s];
  }
  if (r[1][1] > r[2][2]) {
    const s = 2 * Math.sqrt(1 + r[1][1] - r[0][0] - r[2][2]);
    return [(r[0][2] - r[2][0]) / s, (r[0][1] + r[1][0]) / s, 0.25 * s, (r[1][2] + r[2][1]) / s];
  }
  const s = 2 * Math.sqrt(1 + r[2][2] - r[0][0] - r[1][1]);
  return [(r[1][0] - r[0][1]) / s, (r[0][2] + r[2][0]) / s, (r[1][2] + r[2][1]) / s, 0.25 * s];
}
