/** Surface voxels of a binary mask, as SPEC section 4 defines them. */
import type { Dims3 } from './types.js';

/**
 * 1 where the mask is set and at least one of the six face neighbours is outside it; voxels on the
 * grid border count as having an outside neighbour.
 */
export function surfaceOf(mask: Uint8Array, dims: Dims3): Uint8Array {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const surface = new Uint8Array(mask.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = j * nx + k * plane;
      for (let i = 0; i < nx; i++) {
        const at = row + i;
        if (mask[at] === 0) continue;
        const onBorder = i === 0 || j === 0 || k === 0 || i === nx - 1 || j === ny - 1 || k === nz - 1;
        if (onBorder || mask[at - 1] === 0 || mask[at + 1] === 0 || mask[at - nx] === 0 || mask[at + nx] === 0
          || mask[at - plane] === 0 || mask[at + plane] === 0) {
          surface[at] = 1;
        }
      }
    }
  }
  return surface;
}
