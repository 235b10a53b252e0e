import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { preprocessToMeta } from '../../core/inference/preprocess-meta.js';
import { ARCHITECTURES, makeModelConfig, UPSAMPLING_MODES } from '../../core/model/config.js';
import { createModel, SegmentationModel } from '../../core/model/network.js';
import { parameterCount } from '../../core/model/parameters.js';
import { preprocessConfig } from '../../core/preprocess/config.js';
import { BACKEND_PREFERENCES, initBackend } from '../../core/tf/backend.js';
import { describeDrops, prepareTrainingData } from '../../core/train/data.js';
import { trainLocal, type TrainProgress } from '../../core/train/trainer.js';
import { loadModelFile } from '../../core/weights/index.js';
import { printResult, type CliCommand } from '../command.js';
import { choiceOption, intOption, numberOption, requiredOption } from '../options.js';

const usage = `Usage: fedseg train --data DIR [--data DIR ...] --model unet|attention-unet --out FILE.fsm [options]

Trains a 3D U-Net or Attention U-Net centrally on the BraTS cases under each --data folder (a
dataset, a site, or several sites), with the original project's loss (Dice + focal) and Adam.
Cases are preprocessed as in SPEC section 3; those with <= 1 % tumour in the crop are dropped.
Training uses random tumour-biased patches; --out is rewritten atomically after every epoch, so it
always holds the last finished epoch (Ctrl-C stops after the current step).

Options:
  --epochs N            epochs (default 10)
  --patch N             cubic patch edge in voxels, divisible by 2^(depth-1) (default 64)
  --downsample F        the model sees the 128^3 crop block-averaged by F (4: 4 mm voxels, as the demo and
                        experiment train); --patch then counts reduced voxels (default 1)
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
        epochs: { type: 'string' }, patch: { type: 'string' }, downsample: { type: 'string' }, 'base-filters': { type: 'string' }, depth: { type: 'string' },
        upsampling: { type: 'string' }, lr: { type: 'string' }, 'batch-size': { type: 'string' }, 'patches-per-case': { type: 'string' },
        validation: { type: 'string' }, scaling: { type: 'string' }, init: { type: 'string' }, seed: { type: 'string' },
        'cache-mb': { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    const dataDirs = requiredOption(values, 'data', { metavar: 'DIR', note: 'repeat it to train on several folders' });
    const out = requiredOption(values, 'out', { metavar: 'FILE', note: 'the model file to write' });
    const arch = choiceOption(values, 'model', ARCHITECTURES, 'unet');
    const depth = intOption(values, 'depth', { min: 1, fallback: 5 });
    const patch = intOption(values, 'patch', { min: 1, fallback: 64 });
    const downsample = intOption(values, 'downsample', { min: 1, max: 16, fallback: 1 });
    const config = makeModelConfig({
      arch, depth, downsample, inputShape: [patch, patch, patch], baseFilters: intOption(values, 'base-filters', { min: 1, fallback: 16 }),
      upsampling: choiceOption(values, 'upsampling', UPSAMPLING_MODES, 'transpose'),
    });
    const preprocess = preprocessConfig({ scaling: choiceOption(values, 'scaling', ['volume', 'per-slice'] as const, 'volume') });
    const seed = intOption(values, 'seed', { fallback: 1 });
    const epochs = intOption(values, 'epochs', { min: 1, fallback: 10 });
    const learningRate = numberOption(values, 'lr', { check: (n) => n > 0, rule: 'a positive number', fallback: 1e-4 });
    const validationFraction = numberOption(values, 'validation', { check: (n) => n >= 0 && n < 1, rule: 'in [0, 1)', fallback: 0.2 });
    const batchSize = intOption(values, 'batch-size', { min: 1, fallback: 2 });
    const patchesPerCase = intOption(values, 'patches-per-case', { min: 1, fallback: 1 });
    const cacheMb = intOption(values, 'cache-mb', { min: 1, fallback: 4096 });
    // Without --backend, initBackend honours FEDSEG_BACKEND, then picks the best available.
    const backend = choiceOption(values, 'backend', BACKEND_PREFERENCES);

    const info = await initBackend(backend);
    const data = await prepareTrainingData(dataDirs, preprocess, {
      validationFraction, seed, cacheBytes: cacheMb * 1024 * 1024,
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
    const onSigint = () => controller.abort(new FedSegError('training cancelled (Ctrl-C); --out holds the last finished epoch', { file: out }));
    process.once('SIGINT', onSigint);
    try {
      const result = await trainLocal({
        // At the model's own resolution, as every site trains (site/trainer.ts).
        model, data: { train: data.train.downsampled(downsample), validation: data.validation.downsampled(downsample) }, epochs, seed, learningRate,
        batchSize, patchesPerCase,
        onProgress: progressPrinter(Boolean(process.stderr.isTTY) && !values.json),
        signal: controller.signal,
        checkpointPath: out,
        checkpointMeta: { ...preprocessToMeta(preprocess), seed, epochsPlanned: epochs, learningRate, trainCases: data.train.size },
      });
      const summary = {
        ok: true, out, backend: info.detail, architecture: config, parameters: parameterCount(config),
        trainCases: data.train.caseIds, validationCases: data.validation.caseIds, droppedCases: data.stats.droppedByFilter,
        metrics: result.metrics,
      };
      printResult(values.json, summary, () => {
        const v = result.metrics.validation;
        return [
          `wrote ${out} (${config.arch}, ${parameterCount(config).toLocaleString('en')} parameters) after ${result.metrics.epochs} epochs, ${result.metrics.steps} steps in ${formatSeconds(result.metrics.seconds)}`,
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
