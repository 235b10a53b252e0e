/**
 * Column (im2col) geometry for NDHWC/DHWIO conv3d, over a range of output rows so callers can bound
 * the column buffer. Row r is output voxel (b, od, oh, ow) in NDHWC order; column k = ((fd*fH + fh)*fW
 * + fw)*Cin + ci, i.e. the flattened DHWIO filter's row order, so cols[R,K] x filter[K,Cout] = y rows.
 */
import type { Conv3DGeometry } from './conv-engine.js';

export function columnsPerRow(g: Conv3DGeometry): number {
  return g.filterDepth * g.filterHeight * g.filterWidth * g.inChannels;
}

export function outputRows(g: Conv3DGeometry): number {
  return g.batch * g.outDepth * g.outHeight * g.outWidth;
}

/**
 * Visits every (row, filter tap) pair of rows [r0, r1): `visit(p, xOffset)` where p is the column
 * offset of the tap's first channel (relative to cols start, row-major with K columns) and xOffset the
 * input offset of its first channel, or -1 for a tap in the zero padding.
 */
function forEachTap(g: Conv3DGeometry, r0: number, r1: number, visit: (p: number, xOffset: number) => void): void {
  const cin = g.inChannels;
  const xStrideH = g.inWidth * cin;
  const xStrideD = g.inHeight * xStrideH;
  const xStrideB = g.inDepth * xStrideD;
  let ow = r0 % g.outWidth;
  let rest = (r0 - ow) / g.outWidth;
  let oh = rest % g.outHeight;
  rest = (rest - oh) / g.outHeight;
  let od = rest % g.outDepth;
  let b = (rest - od) / g.outDepth;
  let p = 0;
  for (let r = r0; r < r1; r++) {
    for (let fd = 0; fd < g.filterDepth; fd++) {
      const id = od * g.strideDepth - g.padFront + fd * g.dilationDepth;
      const depthOk = id >= 0 && id < g.inDepth;
      for (let fh = 0; fh < g.filterHeight; fh++) {
        const ih = oh * g.strideHeight - g.padTop + fh * g.dilationHeight;
        const rowBase = depthOk && ih >= 0 && ih < g.inHeight ? b * xStrideB + id * xStrideD + ih * xStrideH : -1;
        for (let fw = 0; fw < g.filterWidth; fw++, p += cin) {
          const iw = ow * g.strideWidth - g.padLeft + fw * g.dilationWidth;
          visit(p, rowBase >= 0 && iw >= 0 && iw < g.inWidth ? rowBase + iw * cin : -1);
        }
      }
    }
    if (++ow === g.outWidth) {
      ow = 0;
      if (++oh === g.outHeight) {
        oh = 0;
        if (++od === g.outDepth) {
          od = 0;
          b++;
        }
      }
    }
  }
}

/** Column-to-volume: dx[tap] += cols[row, tap] for rows [r0, r1). dx must be zeroed by the caller once. */
export function col2imAdd(cols: Float32Array, g: Conv3DGeometry, r0: number, r1: number, dx: Float32Array): void {
  const cin = g.inChannels;
  forEachTap(g, r0, r1, (p, xo) => {
    if (xo >= 0) for (let c = 0; c < cin; c++) dx[xo + c] += cols[p + c];
  });
}
