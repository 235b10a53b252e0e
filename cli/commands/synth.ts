import { parseArgs } from 'node:util';
import { FedSegError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs/atomic-write.js';
import { encodePng } from '../../core/report/index.js';
import { siteMontage, writeSyntheticDataset, type SynthReport } from '../../core/synth/index.js';
import { printResult, type CliCommand } from '../command.js';
import { intOption, requiredOption } from '../options.js';

const usage = `Usage: fedseg synth --out DIR [--sites N] [--cases N] [--seed S] [--montage FILE.png] [--json]

Writes synthetic BraTS-like hospitals: DIR/site-<n>/BraTS20_Training_<NNN>/ with
<id>_{flair,t1,t1ce,t2}.nii.gz (int16) and <id>_seg.nii.gz (uint8, labels 0/1/2/4),
240 x 240 x 155 at 1 mm, plus each site's name_mapping.csv and survival_info.csv. Case numbers are unique across
sites. Each site has its own scanner (gain, contrast curve, bias field, noise, slice thickness) and
patient mix (tumour size, location, share of lower-grade gliomas); core/synth/site-profiles.ts documents every knob.
The same seed always gives byte-identical files.
  --out DIR     output folder (created if needed; existing cases of the same id are replaced)
  --sites N     number of hospitals (default 5)
  --cases N     cases per hospital (default 4)
  --seed S      integer seed (default 1)
  --montage F   also writes a PNG with one row per site: FLAIR, T1, T1ce, T2, mask on FLAIR, coronal T2`;

const command: CliCommand = {
  summary: 'writes deterministic synthetic BraTS-like hospitals (one folder per site)',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        sites: { type: 'string' },
        cases: { type: 'string' },
        seed: { type: 'string' },
        montage: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (positionals.length > 0) throw new FedSegError(`unexpected argument ${positionals[0]}`);
    const out = requiredOption(values, 'out', { metavar: 'DIR' });
    const started = performance.now();
    const report = await writeSyntheticDataset({
      out,
      sites: intOption(values, 'sites', { min: 0, fallback: 5 }),
      casesPerSite: intOption(values, 'cases', { min: 0, fallback: 4 }),
      seed: intOption(values, 'seed', { min: 0, fallback: 1 }),
      onCase: values.json ? undefined : (c) => process.stderr.write(`  site-${c.site}/${c.caseId}\n`),
    });
    if (values.montage) {
      const image = siteMontage(report.seed, report.sites.length);
      await writeFileAtomic(values.montage, encodePng(image.rgb, image.width, image.height));
    }
    const seconds = (performance.now() - started) / 1000;
    printResult(values.json, { ok: true, seconds, ...summarise(report) }, () => formatText(report, seconds));
    return 0;
  },
};

export default command;

function summarise(report: SynthReport) {
  return {
    out: report.out,
    seed: report.seed,
    sites: report.sites.map((s) => ({
      site: s.site,
      dir: s.dir,
      scanner: s.profile.scanner,
      tumourRadiusMm: s.profile.tumourRadius,
      noiseSigma: round(s.profile.noiseSigma),
      biasAmplitude: round(s.profile.biasAmplitude),
      cases: s.cases.map((c) => ({ caseId: c.caseId, dir: c.dir, tumourVolumeMl: c.tumourVoxels / 1000 })),
    })),
  };
}

function formatText(report: SynthReport, seconds: number): string {
  const total = report.sites.reduce((n, s) => n + s.cases.length, 0);
  const lines = [`wrote ${total} cases in ${report.sites.length} sites to ${report.out} (seed ${report.seed}, ${seconds.toFixed(1)} s)`];
  for (const s of report.sites) {
    const ids = s.cases.map((c) => c.caseId);
    lines.push(`  site-${s.site}: ${ids[0]}..${ids[ids.length - 1]}  ${s.profile.scanner}`);
  }
  return lines.join('\n');
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
