/**
 * Privacy accounting for client-level DP-FedAvg (McMahan et al., ICLR 2018): each round releases the
 * sum of site updates clipped to L2 norm C plus Gaussian noise of standard deviation sigma * C, each
 * site taking part with probability q (Poisson sampling; q = 1: every registered site, every round).
 * Neighbouring federations differ by one whole site (add/remove), so one round is the Gaussian
 * mechanism of sensitivity C, i.e. sensitivity 1 at noise multiplier sigma.
 *
 * Full participation (q = 1) has an exact answer: T rounds of the Gaussian mechanism with noise
 * multiplier sigma compose to one Gaussian mechanism with multiplier sigma / sqrt(T) (the sum of T
 * independent Gaussians is Gaussian), whose exact (epsilon, delta) curve is Balle & Wang's analytic
 * Gaussian mechanism (ICML 2018):
 *     delta(eps) = Phi(1 / (2 s) - eps * s) - e^eps * Phi(-1 / (2 s) - eps * s),   s = sigma / sqrt(T).
 * With sampling (q < 1) there is no closed form. Renyi DP of the sampled Gaussian at integer orders
 * (Mironov, Talwar & Zhang 2019, the formula Opacus and TF-Privacy use) composes by addition and
 * converts to (epsilon, delta) with Balle et al. (AISTATS 2020, Thm. 21); both steps are upper
 * bounds. Sampling never weakens privacy: by joint convexity of the hockey-stick divergence one
 * sampled round is dominated by the unsampled Gaussian pair, and dominating pairs compose, so the
 * exact q = 1 value bounds the sampled federation too. The accountant reports the smaller of the
 * two bounds, which is therefore never below the true epsilon and never above the q = 1 value.
 */
import { FedSegError } from '../errors.js';

export interface DpMechanism {
  /** Gaussian noise standard deviation divided by the clip norm C. */
  noiseMultiplier: number;
  /** Probability that a given site takes part in a round (1 = all sites every round). */
  samplingRate: number;
}

/**
 * Integer Renyi orders the RDP bound is minimised over (integer orders have the exact binomial
 * formula; fractional ones would tighten the bound by a few per mille, e.g. 7.3299 instead of
 * Opacus's 7.3291 at q = 0.04, sigma = 1.5, 2250 steps).
 */
const ORDERS = [...Array.from({ length: 63 }, (_, i) => i + 2), 72, 80, 96, 128, 160, 192, 256, 384, 512, 768, 1024];

/** epsilon after `rounds` completed rounds at `delta`: exact for full participation, an upper bound with sampling. */
export function epsilonAfter(mechanism: DpMechanism, rounds: number, delta: number): number {
  check(mechanism, rounds, delta);
  if (rounds === 0) return 0;
  const full = exactGaussianEpsilon(mechanism.noiseMultiplier / Math.sqrt(rounds), delta);
  if (mechanism.samplingRate === 1) return full;
  return Math.min(full, rdpEpsilon(mechanism, rounds, delta));
}

/**
 * The smallest noise multiplier (to 1e-4 relative, rounded up) whose epsilon after `rounds` rounds
 * at sampling rate `samplingRate` is within `epsilon`: how `fedseg demo --dp-epsilon` calibrates.
 */
export function noiseMultiplierFor(epsilon: number, delta: number, rounds: number, samplingRate: number): number {
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new FedSegError(`target epsilon must be positive, got ${epsilon}`, { field: 'epsilon' });
  if (!Number.isInteger(rounds) || rounds < 1) throw new FedSegError(`rounds must be a positive integer, got ${rounds}`, { field: 'rounds' });
  const within = (sigma: number) => epsilonAfter({ noiseMultiplier: sigma, samplingRate }, rounds, delta) <= epsilon;
  let high = 1;
  while (!within(high)) {
    high *= 2;
    if (high > 1e9) throw new FedSegError(`no noise multiplier up to 1e9 reaches epsilon ${epsilon} at delta ${delta}`, { field: 'epsilon' });
  }
  let low = 0;
  // epsilon falls as sigma grows; bisect and keep the end that meets the target.
  while (high - low > 1e-4 * high) {
    const mid = (low + high) / 2;
    if (within(mid)) high = mid;
    else low = mid;
  }
  return high;
}

/** Smallest epsilon with delta(epsilon) <= delta for the Gaussian mechanism of sensitivity 1 and noise s. */
export function exactGaussianEpsilon(s: number, delta: number): number {
  // The second term in log space: e^eps overflows past eps = 709 while Phi(...) underflows.
  const deltaAt = (eps: number) => normalCdf(1 / (2 * s) - eps * s) - Math.exp(eps + logNormalCdf(-1 / (2 * s) - eps * s));
  if (deltaAt(0) <= delta) return 0;
  let high = 1;
  while (deltaAt(high) > delta) high *= 2;
  let low = 0;
  // delta(eps) falls monotonically; bisect to well below any reported precision and keep the upper end.
  while (high - low > 1e-13 * high) {
    const mid = (low + high) / 2;
    if (deltaAt(mid) > delta) low = mid;
    else high = mid;
  }
  // Rounded up by 1e-10 relative: far more than the float error of delta(eps) moves eps (~1e-15),
  // so the answer stays above the exact value (the test checks it against mpmath).
  return high * (1 + 1e-10);
}

/** RDP of `rounds` sampled-Gaussian rounds, converted to (epsilon, delta) (Balle et al. 2020, Thm. 21). */
export function rdpEpsilon(mechanism: DpMechanism, rounds: number, delta: number): number {
  let best = Infinity;
  for (const alpha of ORDERS) {
    const rdp = rounds * sampledGaussianRdp(mechanism.samplingRate, mechanism.noiseMultiplier, alpha);
    const eps = rdp + Math.log((alpha - 1) / alpha) - (Math.log(delta) + Math.log(alpha)) / (alpha - 1);
    if (eps < best) best = eps;
  }
  return Math.max(0, best);
}

/**
 * RDP at integer order alpha of the Gaussian mechanism with noise multiplier sigma under Poisson
 * sampling with rate q: log(sum_k C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2))) / (alpha - 1),
 * summed in log space.
 */
export function sampledGaussianRdp(q: number, sigma: number, alpha: number): number {
  if (q === 1) return alpha / (2 * sigma * sigma);
  let logSum = -Infinity;
  let logBinomial = 0;
  for (let k = 0; k <= alpha; k++) {
    if (k > 0) logBinomial += Math.log(alpha - k + 1) - Math.log(k);
    const term = logBinomial + k * Math.log(q) + (alpha - k) * Math.log1p(-q) + ((k * k - k) / (2 * sigma * sigma));
    logSum = logAdd(logSum, term);
  }
  return logSum / (alpha - 1);
}

function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  const [hi, lo] = a > b ? [a, b] : [b, a];
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** Standard normal CDF via erfc, accurate in the far tails that small deltas need. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** log Phi(x), finite far below where Phi(x) underflows (x < -38). */
function logNormalCdf(x: number): number {
  const z = -x / Math.SQRT2;
  if (z < ERFC_SERIES_LIMIT) return Math.log(0.5 * erfc(z));
  return Math.log(0.5) - z * z - 0.5 * Math.log(Math.PI) - Math.log(erfcFraction(z));
}

const ERFC_SERIES_LIMIT = 1;

/**
 * Complementary error function to about 1e-15 relative (test/privacy checks it against mpmath): the
 * Taylor series of erf below 1 (where erfc > 0.15, so 1 - erf loses under a digit), and the continued
 * fraction erfc(x) = e^(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))) from 1 on,
 * which keeps full relative precision in the tails. (Series up to 2.5, as first drafted, lost 3
 * digits there: 1e-13 relative, enough to put a reported epsilon below the exact one.)
 */
export function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < ERFC_SERIES_LIMIT) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / erfcFraction(x);
}

/** The continued fraction x + (1/2) / (x + 1 / (x + (3/2) / ...)), evaluated bottom-up from 500 terms (converged to 2e-16 at x = 1). */
function erfcFraction(x: number): number {
  let fraction = x;
  for (let n = 500; n >= 1; n--) fraction = x + n / 2 / fraction;
  return fraction;
}

function check(m: DpMechanism, rounds: number, delta: number): void {
  if (!(m.noiseMultiplier > 0) || !Number.isFinite(m.noiseMultiplier)) throw new FedSegError(`noise multiplier must be positive, got ${m.noiseMultiplier}`, { field: 'noiseMultiplier' });
  if (!(m.samplingRate > 0 && m.samplingRate <= 1)) throw new FedSegError(`sampling rate must be in (0, 1], got ${m.samplingRate}`, { field: 'samplingRate' });
  if (!Number.isInteger(rounds) || rounds < 0) throw new FedSegError(`rounds must be a non-negative integer, got ${rounds}`, { field: 'rounds' });
  if (!(delta > 0 && delta < 1)) throw new FedSegError(`delta must be in (0, 1), got ${delta}`, { field: 'delta' });
}
