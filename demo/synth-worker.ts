/**
 * Writes a share of the demo's synthetic cases, so generation (CPU-bound phantom synthesis plus
 * gzip) runs on every core: the demo splits the case list across a few of these processes.
 * Case ids, site profiles and contents are exactly what `fedseg synth` would write.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../core/errors.js';
import { generateCase, siteProfile, trainingCaseId, writeCaseFolder } from '../core/synth/index.js';

const JobSchema = z.object({
  dataDir: z.string().min(1),
  seed: z.int().min(0),
  /** [site (1-based), case index within the site (0-based), case number in the federation] triples. */
  cases: z.array(z.tuple([z.int().positive(), z.int().nonnegative(), z.int().positive()])),
});

async function main(): Promise<void> {
  const job = JobSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
  for (const [site, index, caseNumber] of job.cases) {
    const caseId = trainingCaseId(caseNumber);
    await writeCaseFolder(join(job.dataDir, `site-${site}`, caseId), caseId, generateCase(job.seed, siteProfile(job.seed, site), index));
    process.stdout.write(`${JSON.stringify({ site, caseId })}\n`);
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exit(1);
});
