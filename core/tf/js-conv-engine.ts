/**
 * Pure-JavaScript conv3d engine: direct loops with the channel dimension innermost, so every inner
 * loop walks two contiguous float32 rows (NDHWC activations against DHWIO filter rows) and padding is
 * skipped rather than multiplied. Needs no scratch beyond one float64 accumulator row (Cout or Cin
 * values) for forward/backprop-input and one float64 copy of the filter for backprop-filter, so its
 * extra memory is O(filter). It is the fast path on the cpu backend and the reference other engines
 * are tested against.
 */
import type { Conv3DGeometry, ConvEngine } from './conv-engine.js';

/** Range of filter taps t (0 <= t < taps) whose input index o*stride - pad + t*dilation is inside [0, size). */
function validTaps(o: number, stride: number, pad: number, dilation: number, taps: number, size: number): [number, number] {
  const start = o * stride - pad;
  let lo = 0;
  while (lo < taps && start + lo * dilation < 0) lo++;
  let hi = taps;
  while (hi > lo && start + (hi - 1) * dilation >= size) hi--;
  return [lo, hi];
}

export function forwardJs(x: Float32Array, filter: Float32Array, g: Conv3DGeometry, out: Float32Array): void {
  const cin = g.inChannels;
  const cout = g.outChannels;
  const acc = new Float64Array(cout);
  const xStrideW = cin;
  const xStrideH = g.inWidth * cin;
  const xStrideD = g.inHeight * xStrideH;
  const xStrideB = g.inDepth * xStrideD;
  let o = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let od = 0; od < g.outDepth; od++) {
      const [d0, d1] = validTaps(od, g.strideDepth, g.padFront, g.dilationDepth, g.filterDepth, g.inDepth);
      for (let oh = 0; oh < g.outHeight; oh++) {
        const [h0, h1] = validTaps(oh, g.strideHeight, g.padTop, g.dilationHeight, g.filterHeight, g.inHeight);
        for (let ow = 0; ow < g.outWidth; ow++) {
          const [w0, w1] = validTaps(ow, g.strideWidth, g.padLeft, g.dilationWidth, g.filterWidth, g.inWidth);
          acc.fill(0);
          for (let fd = d0; fd < d1; fd++) {
            const id = od * g.strideDepth - g.padFront + fd * g.dilationDepth;
            for (let fh = h0; fh < h1; fh++) {
              const ih = oh * g.strideHeight - g.padTop + fh * g.dilationHeight;
              for (let fw = w0; fw < w1; fw++) {
                const iw = ow * g.strideWidth - g.padLeft + fw * g.dilationWidth;
                const xBase = b * xStrideB + id * xStrideD + ih * xStrideH + iw * xStrideW;
                let wRow = ((fd * g.filterHeight + fh) * g.filterWidth + fw) * cin * cout;
                for (let ci = 0; ci < cin; ci++, wRow += cout) {
                  const a = x[xBase + ci];
                  if (a === 0) continue;
                  for (let co = 0; co < cout; co++) acc[co] += a * filter[wRow + co];
                }
              }
            }
          }
          for (let co = 0; co < cout; co++) out[o + co] = acc[co];
          o += cout;
        }
      }
    }
  }
}

/** Filter taps t with (i + pad - t*dilation) divisible by stride and the quotient inside [0, outSize). */
function contributingTaps(i: number, stride: number, pad: number, dilation: number, taps: number, outSize: number): number[] {
  const result: number[] = [];
  for (let t = 0; t < taps; t++) {
    const num = i + pad - t * dilation;
    if (num < 0 || num % stride !== 0) continue;
    const o = num / stride;
    if (o < outSize) result.push(t);
  }
  return result;
}

export function backpropInputJs(dy: Float32Array, filter: Float32Array, g: Conv3DGeometry, dx: Float32Array): void {
  const cin = g.inChannels;
  const cout = g.outChannels;
  const acc = new Float64Array(cin);
  const tapsW = Array.from({ length: g.inWidth }, (_, iw) =>
    contributingTaps(iw, g.strideWidth, g.padLeft, g.dilationWidth, g.filterWidth, g.outWidth));
  const dyStrideH = g.outWidth * cout;
  const dyStrideD = g.outHeight * dyStrideH;
  const dyStrideB = g.outDepth * dyStrideD;
  let i = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let id = 0; id < g.inDepth; id++) {
      const tapsD = contributingTaps(id, g.strideDepth, g.padFront, g.dilationDepth, g.filterDepth, g.outDepth);
      for (let ih = 0; ih < g.inHeight; ih++) {
        const tapsH = contributingTaps(ih, g.strideHeight, g.padTop, g.dilationHeight, g.filterHeight, g.outHeight);
        for (let iw = 0; iw < g.inWidth; iw++) {
          acc.fill(0);
          for (const fd of tapsD) {
            const od = (id + g.padFront - fd * g.dilationDepth) / g.strideDepth;
            for (const fh of tapsH) {
              const oh = (ih + g.padTop - fh * g.dilationHeight) / g.strideHeight;
              for (const fw of tapsW[iw]) {
                const ow = (iw + g.padLeft - fw * g.dilationWidth) / g.strideWidth;
                const dyBase = b * dyStrideB + od * dyStrideD + oh * dyStrideH + ow * cout;
                let wRow = ((fd * g.filterHeight + fh) * g.filterWidth + fw) * cin * cout;
                for (let ci = 0; ci < cin; ci++, wRow += cout) {
                  let s = 0;
                  for (let co = 0; co < cout; co++) s += dy[dyBase + co] * filter[wRow + co];
                  acc[ci] += s;
                }
              }
            }
          }
          for (let ci = 0; ci < cin; ci++) dx[i + ci] = acc[ci];
          i += cin;
        }
      }
    }
  }
}

export function backpropFilterJs(x: Float32Array, dy: Float32Array, g: Conv3DGeometry, dw: Float32Array): void {
  const cin = g.inChannels;
  const cout = g.outChannels;
  const acc = new Float64Array(dw.length);
  const xStrideH = g.inWidth * cin;
  const xStrideD = g.inHeight * xStrideH;
  const xStrideB = g.inDepth * xStrideD;
  let o = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let od = 0; od < g.outDepth; od++) {
      const [d0, d1] = validTaps(od, g.strideDepth, g.padFront, g.dilationDepth, g.filterDepth, g.inDepth);
      for (let oh = 0; oh < g.outHeight; oh++) {
        const [h0, h1] = validTaps(oh, g.strideHeight, g.padTop, g.dilationHeight, g.filterHeight, g.inHeight);
        for (let ow = 0; ow < g.outWidth; ow++, o += cout) {
          const [w0, w1] = validTaps(ow, g.strideWidth, g.padLeft, g.dilationWidth, g.filterWidth, g.inWidth);
          for (let fd = d0; fd < d1; fd++) {
            const id = od * g.strideDepth - g.padFront + fd * g.dilationDepth;
            for (let fh = h0; fh < h1; fh++) {
              const ih = oh * g.strideHeight - g.padTop + fh * g.dilationHeight;
              for (let fw = w0; fw < w1; fw++) {
                const iw = ow * g.strideWidth - g.padLeft + fw * g.dilationWidth;
                const xBase = b * xStrideB + id * xStrideD + ih * xStrideH + iw * cin;
                let wRow = ((fd * g.filterHeight + fh) * g.filterWidth + fw) * cin * cout;
                for (let ci = 0; ci < cin; ci++, wRow += cout) {
                  const a = x[xBase + ci];
                  if (a === 0) continue;
                  for (let co = 0; co < cout; co++) acc[wRow + co] += a * dy[o + co];
                }
              }
            }
          }
        }
      }
    }
  }
  for (let k = 0; k < dw.length; k++) dw[k] = acc[k];
}

export const jsConvEngine: ConvEngine = {
  name: 'js-direct',
  supports: () => true,
  forward: forwardJs,
  backpropInput: backpropInputJs,
  backpropFilter: backpropFilterJs,
};
