/**
 * Fixes to tfjs-backend-webgpu 4.22 kernels that FedSeg's models reach.
 *
 * Binary ops with a rank-5 operand and a short vector (a bias [c], c < 128, against [n, d, h, w, c])
 * take the package's shared-memory path, which indexes the output coordinates as `coords[4]`; for
 * rank 5 those coordinates are a WGSL struct, so the shader does not compile, the whole command
 * buffer is dropped and every tensor in it reads as zeros (found by test/tf/fused-conv.test.ts on
 * SwiftShader). Such a call is run on the operand reshaped to [rows, c] — same values, a rank-2 shader
 * — and the result reshaped back. Reshape on webgpu only shares the buffer.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** Every webgpu kernel built on BinaryOpProgram with inputs {a, b} (Prelu's are {x, alpha} and it is not used). */
const BINARY_KERNELS = [
  tf.Add, tf.Atan2, tf.Equal, tf.FloorDiv, tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual, tf.LogicalAnd, tf.LogicalOr,
  tf.Maximum, tf.Minimum, tf.Mod, tf.Multiply, tf.NotEqual, tf.Pow, tf.RealDiv, tf.SquaredDifference, tf.Sub,
];

/** The package's shared-memory condition (binary_op_webgpu.js), restricted to the ranks its shader breaks on. */
function brokenSharedPath(big: readonly number[], small: readonly number[]): boolean {
  return big.length >= 5 && small.length === 1 && small[0] < 128;
}

type Args = { inputs: { a: TensorInfo; b: TensorInfo }; backend: { disposeData(dataId: object): void }; attrs?: object };

let installed = false;

/** Wraps the binary kernels on webgpu (idempotent). */
export function installWebGpuKernels(backendName: string): void {
  if (backendName !== 'webgpu' || installed) return;
  installed = true;
  const reshape = tf.getKernel(tf.Reshape, 'webgpu')!.kernelFunc as unknown as (args: object) => TensorInfo;
  for (const name of BINARY_KERNELS) {
    const stock: KernelConfig | undefined = tf.getKernel(name, 'webgpu');
    if (!stock) continue;
    const stockFn = stock.kernelFunc as unknown as (args: Args) => TensorInfo;
    const kernelFunc = (args: Args): TensorInfo => {
      const { a, b } = args.inputs;
      const key = brokenSharedPath(a.shape, b.shape) ? 'a' : brokenSharedPath(b.shape, a.shape) ? 'b' : undefined;
      if (!key) return stockFn(args);
      const big = args.inputs[key];
      const last = big.shape[big.shape.length - 1];
      const flat = reshape({ inputs: { x: big }, backend: args.backend, attrs: { shape: [-1, last] } });
      const out = stockFn({ ...args, inputs: { ...args.inputs, [key]: flat } });
      const result = reshape({ inputs: { x: out }, backend: args.backend, attrs: { shape: tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape) } });
      args.backend.disposeData(flat.dataId);
      args.backend.disposeData(out.dataId);
      return result;
    };
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ ...stock, kernelFunc: kernelFunc as unknown as KernelFunc });
  }
}
