import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  epsilonAfter, erfc, exactGaussianEpsilon, noiseMultiplierFor, normalCdf, rdpEpsilon, sampledGaussianRdp,
} from '../../core/privacy/accountant.js';
import { FedSegError } from '../../core/errors.js';

// Reference values computed with mpmath at 50 digits (the formulas of core/privacy/accountant.ts,
// evaluated independently: ncdf, erfc, binomial sums).
const close = (actual: number, expected: number, relative: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= relative * Math.abs(expected), `${what}: ${actual} vs ${expected}`);

test('erfc matches mpmath to 1e-15 relative across the series / continued-fraction switch and in the tails', () => {
  const reference: Array<[number, number]> = [
    [0.5, 0.4795001221869535], [0.99, 0.1614919304446302], [1, 0.15729920705028513], [2, 0.004677734981047266], [2.4, 0.0006885138966450789],
    [2.5, 0.0004069520174449589], [2.6, 0.00023603441652934908], [3, 2.209049699858544e-05], [5, 1.537459794428035e-12],
    [10, 2.088487583762545e-45], [20, 5.395865611607901e-176],
  ];
  for (const [x, want] of reference) close(erfc(x), want, 1e-15, `erfc(${x})`);
  close(erfc(-1), 2 - 0.15729920705028513, 1e-15, 'erfc(-1)');
});

test('exact Gaussian epsilon (Balle & Wang 2018) matches mpmath and is never below it', () => {
  const reference: Array<[number, number, number]> = [
    [0.5, 1e-5, 9.997256146434301], [0.5, 1e-3, 7.581279924570114], [1, 1e-5, 4.3771780956812245], [1, 1e-3, 3.1386705485829394],
    [2, 1e-5, 1.9930914044151196], [2, 1e-3, 1.3522762448025543], [5, 1e-5, 0.7255217508577958], [5, 1e-3, 0.4539201557417128],
    [0.1, 1e-5, 91.81728962466374], [0.1, 1e-3, 80.03252609415048],
  ];
  for (const [s, delta, want] of reference) {
    const got = exactGaussianEpsilon(s, delta);
    close(got, want, 1e-9, `s=${s} delta=${delta}`);
    assert.ok(got >= want, `s=${s} delta=${delta}: ${got} is below the exact ${want}`);
  }
  // Noise so small that e^eps would overflow: still finite and large.
  const tiny = exactGaussianEpsilon(0.01, 1e-5);
  assert.ok(Number.isFinite(tiny) && tiny > 1000, `s=0.01 gives ${tiny}`);
  // delta(0) below delta: no privacy loss to report.
  assert.equal(exactGaussianEpsilon(1e4, 0.5), 0);
});

test('full participation: T rounds at sigma are exactly one Gaussian mechanism at sigma / sqrt(T)', () => {
  for (const [sigma, rounds] of [[1, 1], [4, 16], [3.5, 40], [10, 100]]) {
    assert.equal(epsilonAfter({ noiseMultiplier: sigma, samplingRate: 1 }, rounds, 1e-5), exactGaussianEpsilon(sigma / Math.sqrt(rounds), 1e-5));
  }
  // sigma 2 over 4 rounds is s = 1: the mpmath value above.
  close(epsilonAfter({ noiseMultiplier: 2, samplingRate: 1 }, 4, 1e-5), 4.3771780956812245, 1e-9, 'sigma 2, 4 rounds');
  assert.equal(epsilonAfter({ noiseMultiplier: 2, samplingRate: 1 }, 0, 1e-5), 0);
});

test('sampled Gaussian RDP matches mpmath and the published Opacus value', () => {
  close(sampledGaussianRdp(0.04, 1.5, 10), 0.005786875742677364, 1e-12, 'RDP q=0.04 sigma=1.5 alpha=10');
  close(sampledGaussianRdp(0.5, 2, 3), 0.11002319335762328, 1e-12, 'RDP q=0.5 sigma=2 alpha=3');
  assert.equal(sampledGaussianRdp(1, 2, 7), 7 / 8);
  // mpmath over the same integer orders.
  close(rdpEpsilon({ noiseMultiplier: 1.5, samplingRate: 0.04 }, 2250, 1e-5), 7.32987677383467, 1e-10, 'q=0.04 sigma=1.5 T=2250');
  close(rdpEpsilon({ noiseMultiplier: 2, samplingRate: 0.5 }, 10, 1e-5), 4.3687798490461525, 1e-10, 'q=0.5 sigma=2 T=10');
  close(rdpEpsilon({ noiseMultiplier: 1, samplingRate: 0.1 }, 100, 1e-5), 7.972921510380538, 1e-10, 'q=0.1 sigma=1 T=100');
  close(rdpEpsilon({ noiseMultiplier: 4, samplingRate: 0.01 }, 1000, 1e-5), 0.3011611585549164, 1e-10, 'q=0.01 sigma=4 T=1000');
  // Opacus's own test (opacus/tests/accountants_test.py): 7.32911117143 with fractional orders as well;
  // integer orders alone can only be a little looser, never tighter.
  const opacus = epsilonAfter({ noiseMultiplier: 1.5, samplingRate: 0.04 }, 2250, 1e-5);
  assert.ok(opacus >= 7.32911117143 && opacus < 7.34, `Opacus case: ${opacus}`);
});

test('with sampling: a valid bound, never above full participation, monotone in rounds, rate and 1 / sigma', () => {
  const delta = 1e-5;
  for (const sigma of [0.8, 2, 6]) {
    for (const rounds of [1, 10, 100]) {
      const full = epsilonAfter({ noiseMultiplier: sigma, samplingRate: 1 }, rounds, delta);
      let previous = 0;
      for (const q of [0.01, 0.1, 0.3, 0.6, 0.9, 0.999, 1]) {
        const eps = epsilonAfter({ noiseMultiplier: sigma, samplingRate: q }, rounds, delta);
        assert.ok(eps <= full, `sigma ${sigma} T ${rounds} q ${q}: ${eps} above the full-participation ${full}`);
        assert.ok(eps >= previous, `sigma ${sigma} T ${rounds}: epsilon falls from ${previous} to ${eps} as q rises to ${q}`);
        previous = eps;
      }
    }
  }
  for (const q of [0.05, 0.5, 1]) {
    let previous = 0;
    for (const rounds of [1, 2, 5, 20, 80, 320]) {
      const eps = epsilonAfter({ noiseMultiplier: 1.2, samplingRate: q }, rounds, delta);
      assert.ok(eps >= previous, `q ${q}: epsilon falls from ${previous} to ${eps} at ${rounds} rounds`);
      previous = eps;
    }
    previous = Infinity;
    for (const sigma of [0.5, 0.8, 1.2, 2, 4, 8]) {
      const eps = epsilonAfter({ noiseMultiplier: sigma, samplingRate: q }, 50, delta);
      assert.ok(eps <= previous, `q ${q}: epsilon rises from ${previous} to ${eps} at sigma ${sigma}`);
      previous = eps;
    }
  }
});

test('noise calibration: the smallest sigma (to 1e-4) that stays within the target epsilon', () => {
  for (const [epsilon, rounds, q] of [[8, 40, 1], [1, 40, 1], [8, 10, 0.5], [2, 100, 0.2]]) {
    const sigma = noiseMultiplierFor(epsilon, 1e-5, rounds, q);
    assert.ok(epsilonAfter({ noiseMultiplier: sigma, samplingRate: q }, rounds, 1e-5) <= epsilon);
    assert.ok(epsilonAfter({ noiseMultiplier: sigma * (1 - 2e-4), samplingRate: q }, rounds, 1e-5) > epsilon, `sigma ${sigma} is not the smallest for epsilon ${epsilon}`);
  }
  // One round at s = 1 gives 4.377 (mpmath above): the calibration finds sigma = 1 back.
  close(noiseMultiplierFor(4.3771780956812245, 1e-5, 1, 1), 1, 1e-4, 'calibrated sigma');
  assert.throws(() => noiseMultiplierFor(0, 1e-5, 10, 1), FedSegError);
  assert.throws(() => epsilonAfter({ noiseMultiplier: 1, samplingRate: 0 }, 1, 1e-5), /sampling rate/);
  assert.throws(() => epsilonAfter({ noiseMultiplier: -1, samplingRate: 1 }, 1, 1e-5), /noise multiplier/);
  assert.throws(() => epsilonAfter({ noiseMultiplier: 1, samplingRate: 1 }, 1, 0), /delta/);
});

/**
 * The exact epsilon of ONE sampled-Gaussian round, from its privacy profile in closed form: with
 * P = (1 - q) N(0, s^2) + q N(1, s^2) and Q = N(0, s^2) (add / remove one site), delta(eps) is the larger of
 * the two hockey-stick divergences, each a difference of normal tails beyond the point where the densities
 * cross. An independent reference the accountant's bound must never fall below.
 */
function exactSampledOneRound(q: number, s: number, delta: number): number {
  const tail = (x: number) => normalCdf(-x);
  const addOne = (eps: number) => {
    const x = s * s * Math.log((Math.expm1(eps) + q) / q) + 0.5;
    return (1 - q) * tail(x / s) + q * tail((x - 1) / s) - Math.exp(eps) * tail(x / s);
  };
  const removeOne = (eps: number) => {
    const room = 1 - Math.exp(eps) * (1 - q);
    if (room <= 0) return 0;
    const x = s * s * Math.log(room / (Math.exp(eps) * q)) + 0.5;
    return normalCdf(x / s) - Math.exp(eps) * ((1 - q) * normalCdf(x / s) + q * normalCdf((x - 1) / s));
  };
  const deltaAt = (eps: number) => Math.max(addOne(eps), removeOne(eps));
  let low = 0;
  let high = 64;
  for (let i = 0; i < 100; i++) {
    const mid = (low + high) / 2;
    if (deltaAt(mid) > delta) low = mid;
    else high = mid;
  }
  return low;
}

test('with sampling, one round: the reported epsilon is never below the exact value from the privacy profile', () => {
  // q = 1 reduces to the analytic Gaussian mechanism: the reference agrees with it.
  close(exactSampledOneRound(1 - 1e-12, 1, 1e-5), exactGaussianEpsilon(1, 1e-5), 1e-6, 'reference at q -> 1');
  // ... and with mpmath's integration of the two hockey-stick divergences (split where the densities cross).
  close(exactSampledOneRound(0.1, 1, 1e-3), 0.649884770703112, 1e-9, 'reference q=0.1 sigma=1');
  close(exactSampledOneRound(0.5, 2, 1e-5), 1.35357342232570, 1e-9, 'reference q=0.5 sigma=2');
  for (const sigma of [0.7, 1, 2, 5]) {
    for (const q of [0.01, 0.1, 0.5, 0.9]) {
      for (const delta of [1e-5, 1e-3]) {
        const exact = exactSampledOneRound(q, sigma, delta);
        const reported = epsilonAfter({ noiseMultiplier: sigma, samplingRate: q }, 1, delta);
        assert.ok(reported >= exact, `sigma ${sigma} q ${q} delta ${delta}: reported ${reported} below the exact ${exact}`);
      }
    }
  }
});
