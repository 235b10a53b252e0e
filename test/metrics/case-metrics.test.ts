import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FedSegError } from '../../core/errors.js';
import {
  computeCaseMetrics, HD95_ONE_EMPTY, percentile, surfaceOf, type Dims3, type LabelVolume, type Spacing3,
} from '../../core/metrics/index.js';
import { labelsAt, seededRandom } from './helpers.js';

const iso: Spacing3 = [1, 1, 1];
const vol = (data: Uint8Array, dims: Dims3, spacing: Spacing3 = iso, source?: string): LabelVolume => ({ data, dims, spacing, source });
const close = (actual: number, expected: number, what: string) => assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} != ${expected}`);

test('identical masks: Dice 1, HD95 0, sensitivity and specificity 1', () => {
  const dims: Dims3 = [6, 6, 6];
  const data = labelsAt(dims, [[2, 2, 2, 4], [3, 2, 2, 1], [2, 3, 2, 2], [1, 1, 1, 2]]);
  const m = computeCaseMetrics(vol(data, dims), vol(Uint8Array.from(data), dims));
  for (const region of ['ET', 'TC', 'WT'] as const) {
    assert.equal(m[region].dice, 1);
    assert.equal(m[region].hd95, 0);
    assert.equal(m[region].sensitivity, 1);
    assert.equal(m[region].specificity, 1);
  }
  assert.equal(m.WT.truePositives, 4);
  assert.equal(m.TC.truePositives, 2);
  assert.equal(m.ET.truePositives, 1);
});

test('every empty-mask case follows SPEC section 4', () => {
  const dims: Dims3 = [4, 4, 4];
  const empty = new Uint8Array(64);
  const edemaOnly = labelsAt(dims, [[1, 1, 1, 2]]);
  // Both empty everywhere: Dice 1, HD95 0 for every region.
  const none = computeCaseMetrics(vol(empty, dims), vol(Uint8Array.from(empty), dims));
  for (const region of ['ET', 'TC', 'WT'] as const) {
    assert.deepEqual([none[region].dice, none[region].hd95, none[region].sensitivity, none[region].specificity], [1, 0, 1, 1]);
  }
  // Truth has only edema, prediction empty: WT exactly one empty, ET/TC both empty.
  const missed = computeCaseMetrics(vol(empty, dims), vol(edemaOnly, dims));
  assert.deepEqual([missed.WT.dice, missed.WT.hd95, missed.WT.sensitivity, missed.WT.specificity], [0, HD95_ONE_EMPTY, 0, 1]);
  assert.deepEqual([missed.ET.dice, missed.ET.hd95], [1, 0]);
  assert.deepEqual([missed.TC.dice, missed.TC.hd95], [1, 0]);
  // Prediction has tumour where the truth has none: exactly one empty the other way round.
  const spurious = computeCaseMetrics(vol(edemaOnly, dims), vol(empty, dims));
  assert.deepEqual([spurious.WT.dice, spurious.WT.hd95, spurious.WT.sensitivity], [0, HD95_ONE_EMPTY, 0]);
  close(spurious.WT.specificity, 63 / 64, 'specificity');
  assert.equal(HD95_ONE_EMPTY, 373.13);
});

test('HD95 uses linear interpolation between ranks and anisotropic spacing', () => {
  // A 10-voxel line (every voxel is surface: the grid is one voxel thick) against its first voxel.
  const dims: Dims3 = [10, 1, 1];
  const truth = labelsAt(dims, Array.from({ length: 10 }, (_, i) => [i, 0, 0, 2] as [number, number, number, number]));
  const pred = labelsAt(dims, [[0, 0, 0, 2]]);
  // truth -> pred distances are 0, 2, 4, ..., 18 mm; p95 at rank 0.95 * 9 = 8.55 -> 17.1 mm.
  const m = computeCaseMetrics(vol(pred, dims, [2, 1, 1]), vol(truth, dims, [2, 1, 1]));
  close(m.WT.hd95, 17.1, 'hd95');
  close(m.WT.dice, 2 / 11, 'dice');
  close(m.WT.sensitivity, 0.1, 'sensitivity');
  assert.equal(m.WT.specificity, 1);
  close(m.WT.truthVolumeMl, 10 * 2 / 1000, 'truth volume');
  close(m.WT.predVolumeMl, 2 / 1000, 'pred volume');
});

test('HD95 between single voxels is their anisotropic distance', () => {
  const dims: Dims3 = [3, 3, 3];
  const m = computeCaseMetrics(vol(labelsAt(dims, [[0, 0, 0, 4]]), dims, [1, 2, 3]), vol(labelsAt(dims, [[1, 1, 1, 4]]), dims, [1, 2, 3]));
  for (const region of ['ET', 'TC', 'WT'] as const) {
    close(m[region].hd95, Math.sqrt(1 + 4 + 9), `${region} hd95`);
    assert.equal(m[region].dice, 0);
  }
});

test('surface voxels: grid borders count as outside', () => {
  assert.equal(count(surfaceOf(new Uint8Array(27).fill(1), [3, 3, 3])), 26);
  assert.equal(count(surfaceOf(new Uint8Array(64).fill(1), [4, 4, 4])), 64 - 8);
  // A two-voxel-thick slab against the i = 0 border of a 5^3 grid: both layers are surface.
  const slab = labelsAt([5, 5, 5], allVoxels([5, 5, 5]).filter(([i]) => i <= 1).map(([i, j, k]) => [i, j, k, 1]));
  assert.equal(count(surfaceOf(slab.map((v) => (v ? 1 : 0)), [5, 5, 5])), 50);
});

test('border-touching masks: hand-computed HD95', () => {
  const dims: Dims3 = [5, 5, 5];
  const truth = labelsAt(dims, allVoxels(dims).filter(([i]) => i <= 1).map(([i, j, k]) => [i, j, k, 2]));
  const pred = labelsAt(dims, allVoxels(dims).filter(([i]) => i <= 2).map(([i, j, k]) => [i, j, k, 2]));
  // pred surface: 66 voxels, the 25 at i = 2 are 1 mm from the truth surface -> p95 (rank 61.75) = 1.
  // truth surface: 50 voxels, 9 (i = 1, inner j/k) are 1 mm from the pred surface -> p95 (rank 46.55) = 1.
  const m = computeCaseMetrics(vol(pred, dims), vol(truth, dims));
  assert.equal(m.WT.hd95, 1);
  close(m.WT.dice, (2 * 50) / (50 + 75), 'dice');
});

test('HD95 and Dice match a brute-force reference on random masks with anisotropic spacing', () => {
  const random = seededRandom(11);
  for (let trial = 0; trial < 25; trial++) {
    const dims: Dims3 = [3 + Math.floor(random() * 6), 3 + Math.floor(random() * 6), 2 + Math.floor(random() * 5)];
    const spacing: Spacing3 = [0.5 + random() * 2, 0.5 + random() * 2, 0.5 + random() * 4];
    const labels = [0, 0, 1, 2, 4];
    const n = dims[0] * dims[1] * dims[2];
    const truth = Uint8Array.from({ length: n }, () => labels[Math.floor(random() * labels.length)]);
    const pred = Uint8Array.from({ length: n }, () => labels[Math.floor(random() * labels.length)]);
    const m = computeCaseMetrics(vol(pred, dims, spacing), vol(truth, dims, spacing));
    for (const [region, members] of [['ET', [4]], ['TC', [1, 4]], ['WT', [1, 2, 4]]] as const) {
      const p = pred.map((v) => ((members as readonly number[]).includes(v) ? 1 : 0));
      const t = truth.map((v) => ((members as readonly number[]).includes(v) ? 1 : 0));
      close(m[region].hd95, bruteHd95(p, t, dims, spacing), `trial ${trial} ${region} hd95`);
      const tp = p.reduce((s, v, i) => s + (v & t[i]), 0);
      const sizes = count(p) + count(t);
      close(m[region].dice, sizes === 0 ? 1 : (2 * tp) / sizes, `trial ${trial} ${region} dice`);
    }
  }
});

test('bad input names the file: different dims, unknown labels, different spacing', () => {
  const a = vol(new Uint8Array(8), [2, 2, 2], iso, 'pred.nii.gz');
  assert.throws(() => computeCaseMetrics(a, vol(new Uint8Array(12), [3, 2, 2], iso, 'truth.nii.gz')), (e: unknown) => e instanceof FedSegError && /pred\.nii\.gz/.test(e.message) && /3x2x2/.test(e.message));
  const withThree = new Uint8Array(8);
  withThree[5] = 3;
  assert.throws(() => computeCaseMetrics(a, vol(withThree, [2, 2, 2], iso, 'truth.nii.gz')), (e: unknown) => e instanceof FedSegError && /truth\.nii\.gz/.test(e.message) && /label 3/.test(e.message));
  const fractional = Float32Array.from([0, 0.5, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => computeCaseMetrics({ data: fractional, dims: [2, 2, 2], spacing: iso, source: 'p.nii' }, vol(new Uint8Array(8), [2, 2, 2])), /p\.nii.*label 0\.5/);
  assert.throws(() => computeCaseMetrics(a, vol(new Uint8Array(8), [2, 2, 2], [1, 1, 2], 'truth.nii.gz')), /spacing/);
});

test('percentile matches numpy linear interpolation', () => {
  close(percentile(Float64Array.from([3, 1, 2, 4]), 95), 3.85, 'p95');
  close(percentile(Float64Array.from([5]), 95), 5, 'single');
  close(percentile(Float64Array.from([1, 2]), 50), 1.5, 'median');
});

function count(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i] ? 1 : 0;
  return n;
}

function allVoxels(dims: Dims3): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let k = 0; k < dims[2]; k++) for (let j = 0; j < dims[1]; j++) for (let i = 0; i < dims[0]; i++) out.push([i, j, k]);
  return out;
}

/** Independent reference: neighbour-scan surfaces and all-pairs distances. */
function bruteHd95(p: Uint8Array, t: Uint8Array, dims: Dims3, spacing: Spacing3): number {
  const cp = count(p);
  const ct = count(t);
  if (cp === 0 && ct === 0) return 0;
  if (cp === 0 || ct === 0) return HD95_ONE_EMPTY;
  const at = (m: Uint8Array, i: number, j: number, k: number) =>
    i < 0 || j < 0 || k < 0 || i >= dims[0] || j >= dims[1] || k >= dims[2] ? 0 : m[i + dims[0] * (j + dims[1] * k)];
  const surface = (m: Uint8Array) => allVoxels(dims).filter(([i, j, k]) => at(m, i, j, k) === 1
    && [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]].some(([a, b, c]) => at(m, i + a, j + b, k + c) === 0));
  const sp = surface(p);
  const st = surface(t);
  const directed = (from: typeof sp, to: typeof sp) => Float64Array.from(from.map((a) =>
    Math.min(...to.map((b) => Math.hypot((a[0] - b[0]) * spacing[0], (a[1] - b[1]) * spacing[1], (a[2] - b[2]) * spacing[2])))));
  return Math.max(percentile(directed(sp, st), 95), percentile(directed(st, sp), 95));
}
