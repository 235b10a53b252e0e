import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { computeCaseMetrics, type Dims3, type Spacing3 } from '../../core/metrics/index.js';
import { seededRandom } from './helpers.js';

/**
 * Cross-check against an independent implementation of SPEC section 4 in numpy/scipy (surface by
 * 6-connected erosion with the border outside, scipy's exact EDT with `sampling`, np.percentile's
 * default linear interpolation). Skipped where Debian's python3 with scipy is not installed.
 */
const PYTHON = '/usr/bin/python3';
const REFERENCE = `
import json, sys
import numpy as np
from scipy import ndimage
req = json.load(sys.stdin)
dims = req['dims']; spacing = req['spacing']
def vol(flat): return np.array(flat, dtype=np.uint8).reshape(dims[::-1]).transpose(2, 1, 0)  # NIfTI order, i fastest
pred, truth = vol(req['pred']), vol(req['truth'])
six = ndimage.generate_binary_structure(3, 1)
def surface(m): return m & ~ndimage.binary_erosion(m, structure=six, border_value=0)
out = {}
for name, labels in (('ET', [4]), ('TC', [1, 4]), ('WT', [1, 2, 4])):
    p, t = np.isin(pred, labels), np.isin(truth, labels)
    if not p.any() and not t.any(): out[name] = {'dice': 1.0, 'hd95': 0.0}; continue
    if not p.any() or not t.any(): out[name] = {'dice': 0.0, 'hd95': 373.13}; continue
    sp, st = surface(p), surface(t)
    d_pt = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    d_tp = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    out[name] = {'dice': 2.0 * (p & t).sum() / (p.sum() + t.sum()), 'hd95': max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))}
print(json.dumps(out))
`;

const hasScipy = spawnSync(PYTHON, ['-c', 'import numpy, scipy.ndimage'], { encoding: 'utf8' }).status === 0;

/** Smooth random blobs with nested labels, so surfaces are realistic rather than salt-and-pepper. */
function blobs(dims: Dims3, random: () => number): Uint8Array {
  const out = new Uint8Array(dims[0] * dims[1] * dims[2]);
  const centre = dims.map((d) => d * (0.3 + 0.4 * random()));
  const radius = Math.min(...dims) * (0.15 + 0.25 * random());
  for (let k = 0; k < dims[2]; k++) {
    for (let j = 0; j < dims[1]; j++) {
      for (let i = 0; i < dims[0]; i++) {
        const d = Math.hypot(i - centre[0], (j - centre[1]) * 1.2, k - centre[2]) + random() * 1.5;
        out[i + dims[0] * (j + dims[1] * k)] = d < radius * 0.4 ? 4 : d < radius * 0.7 ? 1 : d < radius ? 2 : 0;
      }
    }
  }
  return out;
}

test('Dice and HD95 match a numpy/scipy reference implementation', { skip: hasScipy ? false : 'Debian python3 with scipy is not installed' }, () => {
  const random = seededRandom(2020);
  for (let trial = 0; trial < 6; trial++) {
    const dims: Dims3 = [14 + Math.floor(random() * 10), 12 + Math.floor(random() * 10), 8 + Math.floor(random() * 8)];
    const spacing: Spacing3 = [0.6 + random(), 0.6 + random(), 1 + 3 * random()];
    const pred = blobs(dims, random);
    const truth = trial === 5 ? new Uint8Array(pred.length) : blobs(dims, random); // last trial: empty truth
    const run = spawnSync(PYTHON, ['-c', REFERENCE], { input: JSON.stringify({ dims, spacing, pred: [...pred], truth: [...truth] }), encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const expected = JSON.parse(run.stdout) as Record<'ET' | 'TC' | 'WT', { dice: number; hd95: number }>;
    const actual = computeCaseMetrics({ data: pred, dims, spacing }, { data: truth, dims, spacing });
    for (const region of ['ET', 'TC', 'WT'] as const) {
      assert.ok(Math.abs(actual[region].dice - expected[region].dice) < 1e-9, `trial ${trial} ${region} Dice ${actual[region].dice} vs ${expected[region].dice}`);
      assert.ok(Math.abs(actual[region].hd95 - expected[region].hd95) < 1e-6, `trial ${trial} ${region} HD95 ${actual[region].hd95} vs ${expected[region].hd95}`);
    }
  }
});
