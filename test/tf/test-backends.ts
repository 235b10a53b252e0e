/**
 * The backends the kernel, gradient and model tests run on. webgpu runs where Dawn finds an adapter:
 * in CI that is SwiftShader (a CPU implementation of Vulkan; .ci/run installs it and sets
 * VK_ICD_FILENAMES), which checks correctness only. Without an adapter the webgpu tests are skipped
 * with the reason, which node:test prints beside each skipped test.
 */
import { tf } from '../../core/tf/backend.js';
import { describeAdapter, probeWebGpuAdapter } from '../../core/tf/webgpu.js';

export const TEST_BACKENDS = ['cpu', 'wasm', 'webgpu'] as const;
export type TestBackend = (typeof TEST_BACKENDS)[number];

/** Why webgpu cannot be tested in this process, or false when it can. */
export const webgpuSkip: string | false = await probeWebGpuAdapter().then(
  (adapter) => {
    console.log(`# webgpu tests run on ${describeAdapter(adapter)}`);
    return false;
  },
  (err: unknown) => `webgpu: ${err instanceof Error ? err.message : String(err)} (CI: .ci/run sets VK_ICD_FILENAMES to SwiftShader)`,
);

/** node:test options for a test on `backend`: skipped with the reason when it is webgpu and there is no adapter. */
export function on(backend: TestBackend): { skip: string | false } {
  return { skip: backend === 'webgpu' ? webgpuSkip : false };
}

/**
 * A tensor's values. Asynchronous because the webgpu backend cannot read GPU memory synchronously in
 * Node (its readSync needs a browser's OffscreenCanvas).
 */
export async function values(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.data());
}
