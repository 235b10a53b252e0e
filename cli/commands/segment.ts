import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { loadSegmentationModel } from '../../core/inference/load-model.js';
import { segmentCase, writeSegmentation } from '../../core/inference/segment.js';
import { BACKEND_PREFERENCES, initBackend } from '../../core/tf/backend.js';
import { printResult, type CliCommand } from '../command.js';
import { choiceOption, intOption, numberOption } from '../options.js';

const usage = `Usage: fedseg segment --model FILE.fsm --case DIR --out FILE.nii.gz [options]

Predicts the tumour mask of one BraTS case folder with a FedSeg model: preprocesses the case as the
model was trained (channels, scaling, crop from the model file), runs sliding-window inference over
the crop, and writes labels 0/1/2/4 in the case's original grid (e.g. 240 x 240 x 155) with its
affine. Prints the tumour volume per region (ET = {4}, TC = {1, 4}, WT = {1, 2, 4}) in mL.

Options:
  --window N       cubic window edge (default: the training patch, at least 64, clipped to the crop)
  --overlap X      window overlap fraction in [0, 1) (default 0.5)
  --blending MODE  gaussian | uniform (default gaussian)
  --backend NAME   ${BACKEND_PREFERENCES.join(' | ')} (default auto, or FEDSEG_BACKEND)
  --json           print the result as JSON`;

const command: CliCommand = {
  summary: 'predict a case\'s tumour mask (labels 0/1/2/4, original grid) and print volumes',
  usage,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: 'string' }, case: { type: 'string' }, out: { type: 'string' }, window: { type: 'string' },
        overlap: { type: 'string' }, blending: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (!values.model || !values.case || !values.out) throw new FedSegError('--model FILE, --case DIR and --out FILE are all required');
    if (!/\.nii(\.gz)?$/.test(values.out)) throw new FedSegError('output file name must end in .nii or .nii.gz', { file: values.out, field: 'out' });
    const blending = choiceOption(values, 'blending', ['gaussian', 'uniform'] as const, 'gaussian');
    const overlap = numberOption(values, 'overlap', { check: (n) => n >= 0 && n < 1, rule: 'in [0, 1)', fallback: 0.5 });
    const edge = intOption(values, 'window', { min: 1 });
    const window: [number, number, number] | undefined = edge === undefined ? undefined : [edge, edge, edge];
    const backend = choiceOption(values, 'backend', BACKEND_PREFERENCES);
    // Without --backend, initBackend honours FEDSEG_BACKEND, then picks the best available.
    const info = await initBackend(backend);
    const { model, file, preprocess } = await loadSegmentationModel(values.model);
    try {
      const result = await segmentCase(model, values.case, preprocess, { window, overlap, blending });
      await writeSegmentation(values.out, result);
      const { volumesMl } = result;
      printResult(
        values.json,
        { ok: true, caseId: result.caseId, out: values.out, model: values.model, modelSha256: file.sha256, backend: info.detail, dims: result.dims, voxelVolumeMl: result.voxelVolumeMl, volumesMl, seconds: result.seconds },
        () => [
          `wrote ${values.out} (${result.dims.join('x')}, labels 0/1/2/4) for ${result.caseId} in ${result.seconds.toFixed(1)} s on ${info.detail}`,
          `tumour volume: WT ${volumesMl.WT.toFixed(2)} mL, TC ${volumesMl.TC.toFixed(2)} mL, ET ${volumesMl.ET.toFixed(2)} mL`,
        ].join('\n'),
      );
      return 0;
    } finally {
      model.dispose();
    }
  },
};

export default command;
