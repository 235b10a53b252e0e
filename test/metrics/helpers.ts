/** Small deterministic PRNG (mulberry32) so metric tests are reproducible. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Label volume of the given dims with `label` at each listed (i, j, k). */
export function labelsAt(dims: readonly [number, number, number], voxels: Array<[number, number, number, number]>): Uint8Array {
  const data = new Uint8Array(dims[0] * dims[1] * dims[2]);
  for (const [i, j, k, label] of voxels) data[i + dims[0] * (j + dims[1] * k)] = label;
  return data;
}
