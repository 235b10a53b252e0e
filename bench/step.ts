/**
 * Where the seed-sized training step spends its time: the original project's model (U-Net 16..256, 5
 * levels, its dropout, Dice + focal, Adam) on one 128^3 sample, profiled kernel by kernel with
 * tf.profile after a warm-up step. Reports wall and process CPU seconds of the profiled step, peak RSS
 * and each kernel's share of kernel time ("forward" is the fused ops' own forward; it overlaps the
 * convolutions listed under their own names). --quick profiles a 64^3 sample.
 */
import { createModel } from '../core/model/network.js';
import { makeModelConfig } from '../core/model/config.js';
import { initBackend, tf } from '../core/tf/backend.js';
import { segmentationLoss } from '../core/train/loss.js';
import { kernelShares, round } from './kernel-profile.js';

export async function runStepBench(options: { quick?: boolean } = {}) {
  const size = options.quick ? 64 : 128;
  const backend = await initBackend();
  const config = makeModelConfig({ inputShape: [size, size, size] });
  const model = createModel(config, 1);
  const optimizer = tf.train.adam(1e-4);
  const x = tf.randomNormal([1, size, size, size, config.inChannels], 0, 1, 'float32', 1);
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.randomUniform([1, size, size, size], 0, config.numClasses, 'int32', 2), config.numClasses), 'float32'));
  const step = (seed: number) => {
    const cost = optimizer.minimize(() => segmentationLoss(y, model.logits(x, { training: true, seed })), true, model.variables)!;
    cost.dataSync();
    cost.dispose();
  };
  step(1); // Adam's moments and the JIT warm up
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const profile = await tf.profile(() => step(2));
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const rows = kernelShares(profile);
  const summary = {
    size, backend: backend.detail, wallSeconds: round(wallSeconds), cpuSeconds: round((cpu.user + cpu.system) / 1e6),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  for (const t of [x, y]) t.dispose();
  model.dispose();
  optimizer.dispose();
  const table = [
    `training step profile, ${size}^3 sample on ${summary.backend}`,
    `wall ${summary.wallSeconds} s, process CPU ${summary.cpuSeconds} s, peak RSS ${summary.peakRssMiB} MiB`,
    'kernel                         calls   seconds   share',
    ...rows.slice(0, 16).map((r) => `${r.kernel.padEnd(30)} ${String(r.calls).padStart(5)} ${r.seconds.toFixed(2).padStart(9)} ${(100 * r.share).toFixed(1).padStart(6)} %`),
  ].join('\n');
  return { table, json: { ...summary, kernels: rows } };
}
