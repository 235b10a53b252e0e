/** Runs Debian's /usr/bin/python3 with nibabel, the reference NIfTI implementation the tests compare against. */
import { spawnSync } from 'node:child_process';

const PYTHON = '/usr/bin/python3';

/** Null when nibabel can be imported, else the reason (tests print it and skip). */
export function nibabelMissingReason(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import nibabel, numpy'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not runnable (${probe.error.message}); install python3-nibabel`;
  return probe.status === 0 ? null : `nibabel not importable by ${PYTHON}: install the Debian package python3-nibabel`;
}

/** Runs a Python script file or `-c` code and returns its stdout; throws with stderr on failure. */
export function runPython(args: string[]): string {
  const out = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`python ${args[0]} failed (${out.status}): ${out.stderr}`);
  return out.stdout;
}

/** |a - b| within `rel` of the larger magnitude (exact equality for zeros). */
export function closeRel(actual: number, expected: number, rel: number): boolean {
  return Math.abs(actual - expected) <= rel * Math.max(Math.abs(actual), Math.abs(expected)) + 1e-12;
}

export function assertAffineClose(actual: number[][], expected: number[][], tol = 1e-5): void {
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      if (Math.abs(actual[r][c] - expected[r][c]) > tol) {
        throw new Error(`affine[${r}][${c}] is ${actual[r][c]}, expected ${expected[r][c]}\nactual ${JSON.stringify(actual)}\nexpected ${JSON.stringify(expected)}`);
      }
    }
  }
}
