/**
 * The optional BraTS 2020 side files: name_mapping.csv (grade and ids in earlier releases) and
 * survival_info.csv (age, survival, extent of resection). Read when present, never required; a
 * malformed row becomes a note, not an error. This is clinical data: it stays on the site.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCsv } from './csv.js';

export interface NameMappingEntry {
  grade: string | null;
  /** Every id column of the row by its header name (e.g. BraTS_2019_subject_ID); "NA" left out. */
  ids: Record<string, string>;
}

export interface SurvivalEntry {
  age: number | null;
  /** Days survived after diagnosis, or days of follow-up for a patient still alive. */
  survivalDays: number | null;
  /** true for values such as "ALIVE (361 days later)", false for a plain number of days, null if unknown. */
  alive: boolean | null;
  extentOfResection: string | null;
}

export interface ClinicalInfo {
  nameMapping: Map<string, NameMappingEntry>;
  survival: Map<string, SurvivalEntry>;
  /** Which side files were read, and anything odd in them. */
  notes: string[];
}

export const NAME_MAPPING_FILE = 'name_mapping.csv';
export const SURVIVAL_FILE = 'survival_info.csv';

export function emptyClinicalInfo(): ClinicalInfo {
  return { nameMapping: new Map(), survival: new Map(), notes: [] };
}

/** Reads the side files found in any of `dirs` into `into` (later folders add to earlier ones). */
export async function readClinicalInfo(dirs: readonly string[], into: ClinicalInfo = emptyClinicalInfo()): Promise<ClinicalInfo> {
  for (const dir of dirs) {
    const mapping = await readOptional(join(dir, NAME_MAPPING_FILE), into);
    if (mapping !== null) parseNameMapping(mapping, join(dir, NAME_MAPPING_FILE), into);
    const survival = await readOptional(join(dir, SURVIVAL_FILE), into);
    if (survival !== null) parseSurvival(survival, join(dir, SURVIVAL_FILE), into);
  }
  return into;
}

export function parseNameMapping(text: string, file: string, into: ClinicalInfo): void {
  const table = tableOf(text, file, 'BraTS_2020_subject_ID', into);
  if (!table) return;
  const { header, rows, key } = table;
  const gradeColumn = header.indexOf('Grade');
  for (const row of rows) {
    const caseId = row[key]?.trim();
    if (!caseId) continue;
    const ids: Record<string, string> = {};
    header.forEach((name, column) => {
      const value = row[column]?.trim();
      if (column !== gradeColumn && value && value !== 'NA') ids[name] = value;
    });
    into.nameMapping.set(caseId, { grade: gradeColumn >= 0 ? row[gradeColumn]?.trim() || null : null, ids });
  }
  into.notes.push(`read ${file} (${rows.length} rows)`);
}

export function parseSurvival(text: string, file: string, into: ClinicalInfo): void {
  const table = tableOf(text, file, 'Brats20ID', into);
  if (!table) return;
  const { header, rows, key } = table;
  const column = (name: string) => header.findIndex((h) => h.toLowerCase() === name.toLowerCase());
  const [age, days, resection] = [column('Age'), column('Survival_days'), column('Extent_of_Resection')];
  for (const row of rows) {
    const caseId = row[key]?.trim();
    if (!caseId) continue;
    const survival = parseSurvivalDays(days >= 0 ? row[days] : undefined);
    if (survival === 'invalid') into.notes.push(`${file}: ${caseId}: Survival_days "${row[days]}" is not a number of days; left out`);
    const entry: SurvivalEntry = {
      age: parseNumber(age >= 0 ? row[age] : undefined),
      survivalDays: survival === 'invalid' ? null : survival.days,
      alive: survival === 'invalid' ? null : survival.alive,
      extentOfResection: nonEmpty(resection >= 0 ? row[resection] : undefined),
    };
    into.survival.set(caseId, entry);
  }
  into.notes.push(`read ${file} (${rows.length} rows)`);
}

/** "475" -> died after 475 days; "ALIVE (361 days later)" -> alive, followed up 361 days; "" / "NA" -> unknown. */
export function parseSurvivalDays(value: string | undefined): { days: number | null; alive: boolean | null } | 'invalid' {
  const text = value?.trim() ?? '';
  if (text === '' || /^(NA|N\/A|unknown)$/i.test(text)) return { days: null, alive: null };
  const plain = parseNumber(text);
  if (plain !== null) return { days: plain, alive: false };
  const alive = /^alive\b(?:\D*?(\d+(?:\.\d+)?)\s*days?)?/i.exec(text);
  if (alive) return { days: alive[1] === undefined ? null : Number(alive[1]), alive: true };
  return 'invalid';
}

function tableOf(text: string, file: string, keyColumn: string, into: ClinicalInfo) {
  const [headerRow, ...rows] = parseCsv(text);
  const header = (headerRow ?? []).map((h) => h.trim());
  const key = header.findIndex((h) => h.toLowerCase() === keyColumn.toLowerCase());
  if (key < 0) {
    into.notes.push(`${file}: no ${keyColumn} column in the header; file ignored`);
    return null;
  }
  return { header, rows, key };
}

function parseNumber(value: string | undefined): number | null {
  const text = value?.trim() ?? '';
  if (!/^[-+]?\d+(\.\d+)?$/.test(text)) return null;
  return Number(text);
}

function nonEmpty(value: string | undefined): string | null {
  const text = value?.trim() ?? '';
  return text === '' || text === 'NA' ? null : text;
}

/** The file's text, or null when it is absent or unreadable (noted: these files are never required). */
async function readOptional(path: string, into: ClinicalInfo): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') into.notes.push(`${path}: cannot read (${(err as Error).message}); ignored`);
    return null;
  }
}
