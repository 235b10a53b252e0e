/** Pearson's chi-square of a byte histogram against the uniform distribution (255 degrees of freedom). */
export function byteChiSquare(bytes: Uint8Array): number {
  const counts = new Float64Array(256);
  for (const b of bytes) counts[b]++;
  const expected = bytes.length / 256;
  return counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
}

/** The 0.999 quantile of chi-square with 255 degrees of freedom: uniform bytes exceed it once in a thousand. */
export const CHI_SQUARE_255_P001 = 330.5;
