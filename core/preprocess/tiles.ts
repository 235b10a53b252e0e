/** Tile edge for the layout-changing copies: 16 x 16 voxels keep both access patterns cache-friendly. */
const TILE = 16;

/**
 * Visits an [ni, nj, nk] grid as TILE x TILE tiles of (i, k) per row j, for copies between NIfTI
 * order (i fastest) and row-major [i][j][k] (k fastest): walking either order whole thrashes the
 * other side's cache, within a tile both stay in a few cache lines and pages. The visitor runs
 * the voxel loops over k in [k0, k1) and i in [i0, i1) itself, so the hot loop has no call per voxel.
 */
export function forEachTile(
  shape: readonly number[],
  visit: (j: number, i0: number, i1: number, k0: number, k1: number) => void,
): void {
  const [ni, nj, nk] = shape;
  for (let j = 0; j < nj; j++) {
    for (let k0 = 0; k0 < nk; k0 += TILE) {
      const k1 = Math.min(k0 + TILE, nk);
      for (let i0 = 0; i0 < ni; i0 += TILE) visit(j, i0, Math.min(i0 + TILE, ni), k0, k1);
    }
  }
}
