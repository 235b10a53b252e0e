/** Builds tiny BraTS-layout cases on disk (12x10x8 voxels) and breaks them in the ways the tests need. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeNifti } from '../../core/nifti/index.js';

export const DIMS = [12, 10, 8];
export const AFFINE = [[-1, 0, 0, 6], [0, -1, 0, 5], [0, 0, 1, -4], [0, 0, 0, 1]];
const COUNT = DIMS[0] * DIMS[1] * DIMS[2];

export function maskData(extra: number[] = []): Uint8Array {
  const mask = new Uint8Array(COUNT);
  for (let n = 0; n < COUNT; n++) mask[n] = [0, 0, 0, 1, 2, 4][n % 6];
  extra.forEach((value, i) => { mask[i * 7] = value; });
  return mask;
}

/** Runs `body` in a fresh temporary folder named `<prefix>XXXXXX`, removed afterwards whatever happens. */
export async function inTempDir(prefix: string, body: (root: string) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  try {
    await body(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface CaseOptions {
  ext?: '.nii' | '.nii.gz';
  modalities?: string[];
  maskName?: string | null;
  mask?: Uint8Array;
  dimsOf?: Record<string, number[]>;
}

/** Writes <root>/<caseId>/<caseId>_{flair,t1,t1ce,t2,seg}<ext>; returns the case folder. */
export async function writeCase(root: string, caseId: string, options: CaseOptions = {}): Promise<string> {
  const dir = join(root, caseId);
  mkdirSync(dir, { recursive: true });
  const ext = options.ext ?? '.nii.gz';
  for (const [index, modality] of (options.modalities ?? ['flair', 't1', 't1ce', 't2']).entries()) {
    const dims = options.dimsOf?.[modality] ?? DIMS;
    const count = dims.reduce((a, b) => a * b, 1);
    const data = Int16Array.from({ length: count }, (_, n) => (n * (index + 3)) % 900);
    await writeNifti(join(dir, `${caseId}_${modality}${ext}`), { dims, affine: AFFINE, datatype: 'int16', data });
  }
  const maskName = options.maskName === undefined ? `${caseId}_seg${ext}` : options.maskName;
  if (maskName) await writeNifti(join(dir, maskName), { dims: DIMS, affine: AFFINE, datatype: 'uint8', data: options.mask ?? maskData() });
  return dir;
}

/** Rewrites a file with `edit` applied to its decompressed bytes (recompressing .gz files). */
export function editNifti(path: string, edit: (bytes: Buffer) => Buffer): void {
  const gz = path.endsWith('.gz');
  const raw = readFileSync(path);
  const bytes = gz ? gunzipSync(raw) : raw;
  const edited = edit(bytes);
  writeFileSync(path, gz ? gzipSync(edited) : edited);
}

