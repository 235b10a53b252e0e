/** Pearson's chi-square of a byte histogram against the uniform distribution (255 degrees of freedom). */
export function byteChiSquare(bytes: Uint8Array): number {
  const counts = new Float64Array(256);
  for (const b of bytes) counts[b]++;
  const expected = bytes.length / 256;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

/**
 * The 1 - 1e-6 quantile of chi-square with 255 degrees of freedom (Wilson-Hilferty): uniform bytes
 * exceed it once in a million, so a suite that checks a dozen masked inputs per run does not fail at
 * random (at the 0.999 quantile it did, about once in a hundred runs). Anything short of uniform is
 * far beyond it: the bytes of an unmasked float32 update score in the hundreds of thousands.
 */
export const CHI_SQUARE_255_P1E6 = 377.3;
