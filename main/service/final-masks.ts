/**
 * Reviewed final masks, versioned in the site's app data (never in the hospital's case folder, so the
 * ground truth shipped with a case is never overwritten): `final-masks/<case>/v<N>.nii.gz`, one file per
 * save, and `final-masks/<case>/versions.json` with each version's provenance and which version is in use
 * (null: the case's ground truth). Reverting chooses another version; nothing is ever deleted.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { MaskVersion, MaskVersions } from '../../preload/api.js';
import { readJson, writeJsonAtomic } from './json-store.js';

const Scores = z.object({ et: z.number(), tc: z.number(), wt: z.number() });
const SourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('truth') }),
  z.object({ kind: z.literal('prediction'), round: z.number().int().nullable(), modelSha256: z.string().nullable() }),
  z.object({ kind: z.literal('blank') }),
  z.object({ kind: z.literal('final'), version: z.number().int().positive() }),
]);
const VersionSchema = z.object({
  version: z.number().int().positive(),
  savedAt: z.string(),
  savedBy: z.string(),
  source: SourceSchema,
  volumesMl: Scores,
  sourceVolumesMl: Scores,
  diceVsSource: Scores.nullable(),
  confirmedWarnings: z.array(z.object({ code: z.enum(['empty', 'outside-brain', 'too-large']), message: z.string() })),
}) satisfies z.ZodType<MaskVersion>;
const VersionsSchema = z.object({
  chosen: z.number().int().positive().nullable(),
  versions: z.array(VersionSchema),
}) satisfies z.ZodType<MaskVersions>;

const EMPTY: MaskVersions = { chosen: null, versions: [] };

export class FinalMaskStore {
  constructor(private readonly root: string) {}

  private dir(caseId: string): string {
    return join(this.root, caseId);
  }

  private indexPath(caseId: string): string {
    return join(this.dir(caseId), 'versions.json');
  }

  file(caseId: string, version: number): string {
    return join(this.dir(caseId), `v${version}.nii.gz`);
  }

  versions(caseId: string): MaskVersions {
    return readJson(this.indexPath(caseId), VersionsSchema, EMPTY);
  }

  /** The mask file of the version in use, or null when the case uses its ground truth. */
  chosenFile(caseId: string): string | null {
    const { chosen } = this.versions(caseId);
    return chosen === null ? null : this.file(caseId, chosen);
  }

  nextVersion(caseId: string): number {
    return Math.max(0, ...this.versions(caseId).versions.map((v) => v.version)) + 1;
  }

  /** Records a version whose file is already written at file(caseId, version), and puts it in use. */
  add(caseId: string, entry: MaskVersion): MaskVersions {
    const current = this.versions(caseId);
    const next = { chosen: entry.version, versions: [...current.versions, VersionSchema.parse(entry)] };
    writeJsonAtomic(this.indexPath(caseId), next);
    return next;
  }

  /** Puts an earlier version (or, with null, the ground truth) back in use. */
  choose(caseId: string, version: number | null): MaskVersions {
    const current = this.versions(caseId);
    if (version !== null && !current.versions.some((v) => v.version === version)) {
      throw new RangeError(`case ${caseId} has no final mask version ${version}`);
    }
    const next = { ...current, chosen: version };
    writeJsonAtomic(this.indexPath(caseId), next);
    return next;
  }

  ensureDir(caseId: string): void {
    if (!existsSync(this.dir(caseId))) mkdirSync(this.dir(caseId), { recursive: true, mode: 0o700 });
  }
}
