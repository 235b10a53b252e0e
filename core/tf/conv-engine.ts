/**
 * Contract between FedSeg's conv3d kernel registration (core/tf/fast-conv.ts) and the engines that do
 * the arithmetic: the pure-JS engine (core/tf/js-conv-engine.ts), the wasm/XNNPACK path, and the
 * optional native N-API engine (core/tf/native-engine.ts).
 *
 * Layouts (TF.js conventions, no batch/channel reordering anywhere):
 *   x, dx   NDHWC  [batch, inDepth, inHeight, inWidth, inChannels]
 *   y, dy   NDHWC  [batch, outDepth, outHeight, outWidth, outChannels]
 *   filter  DHWIO  [filterDepth, filterHeight, filterWidth, inChannels, outChannels]
 * Convolution (cross-correlation, like TF):
 *   y[b,od,oh,ow,co] = sum_{fd,fh,fw,ci} x[b, od*sD - padFront + fd*dD, oh*sH - padTop + fh*dH,
 *                                          ow*sW - padLeft + fw*dW, ci] * filter[fd,fh,fw,ci,co]
 * with out-of-range input positions reading as zero. backpropInput is its adjoint in x, backpropFilter
 * its adjoint in filter.
 *
 * Rules every engine follows:
 *  - Calls are synchronous (TF.js kernels are); an engine may use threads internally but must have
 *    finished with every array when it returns and must not keep references to them.
 *  - Arrays may be views into the wasm heap: an engine must not call back into TF.js.
 *  - The output array is fully overwritten (the engine zeroes what it accumulates into); inputs are
 *    never written.
 *  - Results must match TF.js's reference kernels to float32 rounding (relative error < 1e-5).
 */
import type * as tf from '@tensorflow/tfjs-core';

/** Everything an engine needs to know about one NDHWC/DHWIO convolution. All values are integers. */
export interface Conv3DGeometry {
  batch: number;
  inDepth: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outDepth: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterDepth: number;
  filterHeight: number;
  filterWidth: number;
  strideDepth: number;
  strideHeight: number;
  strideWidth: number;
  dilationDepth: number;
  dilationHeight: number;
  dilationWidth: number;
  /** Zero padding before the first input plane/row/column (after is implied by the out size). */
  padFront: number;
  padTop: number;
  padLeft: number;
}

export interface ConvEngine {
  /** Short name for logs and `describeBackend()`, e.g. "native (8 threads, AVX2)". */
  readonly name: string;
  /** False for geometries the engine does not handle; the caller then uses the stock kernel. */
  supports(geometry: Conv3DGeometry): boolean;
  /** y = conv3d(x, filter). `out` has batch*outDepth*outHeight*outWidth*outChannels elements. */
  forward(x: Float32Array, filter: Float32Array, geometry: Conv3DGeometry, out: Float32Array): void;
  /** dx = adjoint of forward in x, given dy. `dx` has batch*inDepth*inHeight*inWidth*inChannels elements. */
  backpropInput(dy: Float32Array, filter: Float32Array, geometry: Conv3DGeometry, dx: Float32Array): void;
  /** dfilter = adjoint of forward in filter, given x and dy. `dw` has the filter's element count. */
  backpropFilter(x: Float32Array, dy: Float32Array, geometry: Conv3DGeometry, dw: Float32Array): void;
}

/**
 * What `core/tf/native-engine.ts` must export. `loadNativeConvEngine` returns undefined (never throws)
 * when the addon is not built or cannot load on this machine; `nativeEngineStatus` says why, for logs.
 * It throws a FedSegError only for a configuration mistake (a malformed FEDSEG_THREADS).
 */
export interface NativeEngineModule {
  loadNativeConvEngine(): ConvEngine | undefined;
  nativeEngineStatus(): string;
  /** Optional: native replacements of other kernels (Tile, Slice, pooling); returns the names installed. */
  installNativeKernels?(backendName: string): string[];
}

/** Converts TF.js's Conv3DInfo (channelsLast) into the engine geometry. */
export function geometryFromConvInfo(info: tf.backend_util.Conv3DInfo): Conv3DGeometry {
  return {
    batch: info.batchSize,
    inDepth: info.inDepth,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outDepth: info.outDepth,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterDepth: info.filterDepth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideDepth: info.strideDepth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    dilationDepth: info.dilationDepth,
    dilationHeight: info.dilationHeight,
    dilationWidth: info.dilationWidth,
    padFront: info.padInfo.front,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Floating-point operations of one forward pass (2 per multiply-add); each backprop costs the same. */
export function convFlops(g: Conv3DGeometry): number {
  const outputs = g.batch * g.outDepth * g.outHeight * g.outWidth * g.outChannels;
  return 2 * outputs * g.filterDepth * g.filterHeight * g.filterWidth * g.inChannels;
}

/** Elements of x, y and filter for a geometry (engines use these to validate array lengths). */
export function geometrySizes(g: Conv3DGeometry): { x: number; y: number; filter: number } {
  return {
    x: g.batch * g.inDepth * g.inHeight * g.inWidth * g.inChannels,
    y: g.batch * g.outDepth * g.outHeight * g.outWidth * g.outChannels,
    filter: g.filterDepth * g.filterHeight * g.filterWidth * g.inChannels * g.outChannels,
  };
}
