import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { preprocessToMeta } from '../../core/inference/preprocess-meta.js';
import { ARCHITECTURES, makeModelConfig, UPSAMPLING_MODES, type Architecture, type UpsamplingMode } from '../../core/model/config.js';
import { createModel, SegmentationModel } from '../../core/model/network.js';
import { parameterCount } from '../../core/model/parameters.js';
import { preprocessConfig } from '../../core/preprocess/config.js';
import { BACKEND_PREFERENCES, initBackend, type BackendPreference } from '../../core/tf/backend.js';
import { describeDrops, prepareTrainingData } from '../../core/train/data.js';
import { trainLocal, type TrainProgress } from '../../core/train/trainer.js';
import { loadModelFile } from '../../core/weights/index.js';
import { printResult, type CliCommand } from '../command.js';

const usage = `Usage: fedseg train --data DIR [--data DIR ...] --model unet|attention-unet --out FILE.fsm [options]

Trains a 3D U-Net or Attention U-Net centrally on the BraTS cases under each --data folder (a
dataset, a site, or several sites), with the original project's loss (Dice + focal) and Adam.
Cases are preprocessed as in SPEC section 3; those with <= 1 % tumour in the crop are dropped.
Training uses random tumour-biased patches; --out is rewritten atomically after every epoch, so it
always holds the last finished epoch (Ctrl-C stops after the current step).

Options:
  --epochs N            epochs (default 10)
  --patch N             cubic patch edge in voxels, divisible by 2^(depth-1) (default 64)
  --base-filters N      filters at the first level (default 16; levels double)
  --depth N             resolution levels incl. the bottleneck (default 5: 16..256 filters)
  --upsampling MODE     transpose (original Conv3DTranspose) | nearest (default transpose)
  --lr X                Adam learning rate (default 1e-4)
  --batch-size N        patches per step (default 2)
  --patches-per-case N  patches drawn from each case per epoch (default 1)
  --validation X        fraction of cases held out for validation (default 0.2)
  --scaling MODE        volume | per-slice min-max scaling (default volume)
  --init FILE           start from this model file's weights (architecture must match)
  --seed N              seeds initial weights, split, patches and dropout (default 1)
  --cache-mb N          in-memory case cache; cases beyond it are re-read each epoch (default 4096)
  --backend NAME        ${BACKEND_PREFERENCES.join(' | ')} (default auto, or FEDSEG_BACKEND)
  --json                print the result as JSON (progress goes to stderr)`;

function positiveInt(value: string | undefined, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new FedSegError(`--${field} must be a positive integer, got "${value}"`, { field });
  return n;
}

function number(value: string | undefined, field: string, fallback: number, check: (n: number) => boolean, rule: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new FedSegError(`--${field} must be ${rule}, got "${value}"`, { field });
  return n;
}

function oneOf<T extends string>(value: string | undefined, field: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new FedSegError(`--${field} must be one of ${allowed.join(', ')}, got "${value}"`, { field });
  return value as T;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Progress: a redrawn bar on a terminal, plain lines (about ten per epoch) otherwise; always on stderr. */
function progressPrinter(tty: boolean): (e: TrainProgress) => void {
  return (e) => {
    if (e.type === 'start') {
      process.stderr.write(`training on ${e.trainCases} cases (${e.validationCases} for validation), ${e.epochs} epochs x ${e.stepsPerEpoch} steps, batch ${e.batchSize}, patch ${e.patch.join('x')}; backend ${e.backend}\n`);
    } else if (e.type === 'step') {
      const line = `epoch ${e.epoch}/${e.epochs} step ${e.step}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)} (epoch mean ${e.epochLoss.toFixed(4)}) ETA ${formatSeconds(e.etaSeconds)}`;
      if (tty) {
        const width = 24;
        const filled = Math.round((width * e.step) / e.stepsPerEpoch);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}\x1b[K`);
      } else if (e.step === e.stepsPerEpoch || e.step % Math.max(1, Math.round(e.stepsPerEpoch / 10)) === 0) {
        process.stderr.write(`${line}\n`);
      }
    } else {
      const v = e.validation;
      const validation = v ? `, validation loss ${v.loss.toFixed(4)} Dice WT ${v.dice.WT.toFixed(3)} TC ${v.dice.TC.toFixed(3)} ET ${v.dice.ET.toFixed(3)}` : '';
      process.stderr.write(`${tty ? '\r\x1b[K' : ''}epoch ${e.epoch}/${e.epochs} done in ${formatSeconds(e.seconds)}: loss ${e.loss.toFixed(4)}${validation}; saved ${e.checkpoint}\n`);
    }
  };
}

const command: CliCommand = {
  summary: 'train a 3D U-Net / Attention U-Net on one or more dataset folders (baselines)',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        data: { type: 'string', multiple: true }, model: { type: 'string' }, out: { type: 'string' },
        epochs: { type: 'string' }, patch: { type: 'string' }, 'base-filters': { type: 'string' }, depth: { type: 'string' },
        upsampling: { type: 'string' }, lr: { type: 'string' }, 'batch-size': { type: 'string' }, 'patches-per-case': { type: 'string' },
        validation: { type: 'string' }, scaling: { type: 'string' }, init: { type: 'string' }, seed: { type: 'string' },
        'cache-mb': { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (!values.data?.length) throw new FedSegError('--data DIR is required (repeat it to train on several folders)', { field: 'data' });
    if (!values.out) throw new FedSegError('--out FILE is required (the model file to write)', { field: 'out' });
    const arch = oneOf<Architecture>(values.model, 'model', ARCHITECTURES, 'unet');
    const depth = positiveInt(values.depth, 'depth', 5);
    const patch = positiveInt(values.patch, 'patch', 64);
    const config = makeModelConfig({
      arch, depth, inputShape: [patch, patch, patch], baseFilters: positiveInt(values['base-filters'], 'base-filters', 16),
      upsampling: oneOf<UpsamplingMode>(values.upsampling, 'upsampling', UPSAMPLING_MODES, 'transpose'),
    });
    const preprocess = preprocessConfig({ scaling: oneOf(values.scaling, 'scaling', ['volume', 'per-slice'] as const, 'volume') });
    const seed = number(values.seed, 'seed', 1, Number.isInteger, 'an integer');
    const epochs = positiveInt(values.epochs, 'epochs', 10);
    const learningRate = number(values.lr, 'lr', 1e-4, (n) => n > 0, 'a positive number');
    const validationFraction = number(values.validation, 'validation', 0.2, (n) => n >= 0 && n < 1, 'in [0, 1)');
    // Without --backend, initBackend honours FEDSEG_BACKEND, then picks the best available.
    const backend = values.backend === undefined ? undefined : oneOf<BackendPreference>(values.backend, 'backend', BACKEND_PREFERENCES, 'auto');

    const info = await initBackend(backend);
    const data = await prepareTrainingData(values.data, preprocess, {
      validationFraction, seed, cacheBytes: positiveInt(values['cache-mb'], 'cache-mb', 4096) * 1024 * 1024,
    });
    const dropped = data.stats.total - data.stats.yielded;
    if (dropped > 0) process.stderr.write(`left out ${dropped} of ${data.stats.total} cases: ${describeDrops(data.stats)}\n`);

    let model: SegmentationModel;
    if (values.init) {
      const init = await loadModelFile(values.init, { expectConfig: config });
      model = new SegmentationModel(config, init.tensors);
    } else {
      model = createModel(config, seed);
    }
    const controller = new AbortController();
    const onSigint = () => controller.abort(new FedSegError('training cancelled (Ctrl-C); --out holds the last finished epoch', { file: values.out }));
    process.once('SIGINT', onSigint);
    try {
      const result = await trainLocal({
        model, data, epochs, seed, learningRate,
        batchSize: positiveInt(values['batch-size'], 'batch-size', 2),
        patchesPerCase: positiveInt(values['patches-per-case'], 'patches-per-case', 1),
        onProgress: progressPrinter(Boolean(process.stderr.isTTY) && !values.json),
        signal: controller.signal,
        checkpointPath: values.out,
        checkpointMeta: { ...preprocessToMeta(preprocess), seed, epochsPlanned: epochs, learningRate, trainCases: data.train.size },
      });
      const summary = {
        ok: true, out: values.out, backend: info.detail, architecture: config, parameters: parameterCount(config),
        trainCases: data.train.caseIds, validationCases: data.validation.caseIds, droppedCases: data.stats.droppedByFilter,
        metrics: result.metrics,
      };
      printResult(values.json, summary, () => {
        const v = result.metrics.validation;
        return [
          `wrote ${values.out} (${config.arch}, ${parameterCount(config).toLocaleString('en')} parameters) after ${result.metrics.epochs} epochs, ${result.metrics.steps} steps in ${formatSeconds(result.metrics.seconds)}`,
          `final training loss ${result.metrics.loss.toFixed(4)}`,
          v ? `validation (${data.validation.size} cases, tumour-centred patches): loss ${v.loss.toFixed(4)}, Dice WT ${v.dice.WT.toFixed(3)} TC ${v.dice.TC.toFixed(3)} ET ${v.dice.ET.toFixed(3)}` : 'no validation cases',
        ].join('\n');
      });
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
      model.dispose();
    }
  },
};

export default command;
