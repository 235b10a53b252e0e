/**
 * Typed readers for `parseArgs` values, so every subcommand checks numbers and choices by the same
 * rules and reports bad input the same way: a FedSegError whose message names the option
 * (`--epochs must be a positive integer, got "x"`) and whose `where.field` is the option's name
 * without dashes.
 */
import { readFileSync } from 'node:fs';
import { FedSegError } from '../core/errors.js';

/** Names of the options in `V` that parseArgs types as a single string. */
export type StringOption<V> = { [K in keyof V]-?: V[K] extends string | undefined ? K : never }[keyof V] & string;

export interface IntRule {
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Largest accepted value (inclusive). */
  max?: number;
}

export interface NumberRule {
  /** Extra condition on the (finite) number, e.g. `(n) => n > 0`. */
  check?: (n: number) => boolean;
  /** What `check` demands, for the message: "--lr must be <rule>". */
  rule?: string;
}

export interface RequiredHint {
  /** Placeholder shown after the flag, e.g. FILE in "--out FILE is required". */
  metavar?: string;
  /** Why or how, appended in parentheses. */
  note?: string;
}

/** Decimal integers only: "1e3", "0x10" and "" are typos on a command line, not numbers. */
const INTEGER = /^[+-]?\d+$/;

/** An integer option in [min, max]; `fallback` when absent (else undefined). */
export function intOption<V>(values: V, name: StringOption<V>, rule: IntRule & { fallback: number }): number;
export function intOption<V>(values: V, name: StringOption<V>, rule?: IntRule): number | undefined;
export function intOption<V>(values: V, name: StringOption<V>, rule: IntRule & { fallback?: number } = {}): number | undefined {
  const text = values[name] as string | undefined;
  if (text === undefined) return rule.fallback;
  const n = Number(text);
  const { min = -Infinity, max = Infinity } = rule;
  if (!INTEGER.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw optionError(name, describeInt(min, max), text);
  }
  return n;
}

/** A finite number option meeting `check`; `fallback` when absent (else undefined). */
export function numberOption<V>(values: V, name: StringOption<V>, rule: NumberRule & { fallback: number }): number;
export function numberOption<V>(values: V, name: StringOption<V>, rule?: NumberRule): number | undefined;
export function numberOption<V>(values: V, name: StringOption<V>, rule: NumberRule & { fallback?: number } = {}): number | undefined {
  const text = values[name] as string | undefined;
  if (text === undefined) return rule.fallback;
  const n = Number(text);
  // Number('') and Number(' ') are 0: an empty value is a mistake, not zero.
  if (text.trim() === '' || !Number.isFinite(n) || !(rule.check?.(n) ?? true)) {
    throw optionError(name, rule.check ? rule.rule ?? 'a valid number' : 'a number', text);
  }
  return n;
}

/** One of `allowed`; `fallback` when absent (else undefined). */
export function choiceOption<V, T extends string>(values: V, name: StringOption<V>, allowed: readonly T[], fallback: T): T;
export function choiceOption<V, T extends string>(values: V, name: StringOption<V>, allowed: readonly T[]): T | undefined;
export function choiceOption<V, T extends string>(values: V, name: StringOption<V>, allowed: readonly T[], fallback?: T): T | undefined {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(text)) throw optionError(name, `one of ${allowed.join(', ')}`, text);
  return text as T;
}

/** The option's value; absent, empty or an empty list is an error. */
export function requiredOption<V, K extends keyof V & string>(values: V, name: K, hint: RequiredHint = {}): NonNullable<V[K]> {
  const value = values[name];
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) {
    const flag = [`--${name}`, hint.metavar].filter(Boolean).join(' ');
    throw new FedSegError(`${flag} is required${hint.note ? ` (${hint.note})` : ''}`, { field: name });
  }
  return value as NonNullable<V[K]>;
}

export interface SecretSources {
  /** Value of the --NAME option (visible in the process list: fine for tests, not for production). */
  value?: string;
  /** Value of the --NAME-file option: a file holding the secret on its first line. */
  file?: string;
  /** Environment variable consulted when neither option is given; `$ENV_FILE` may name a file instead. */
  env: string;
}

/**
 * A token from `--NAME T`, `--NAME-file FILE`, the file `$ENV_FILE` names (the container convention for
 * mounted secrets) or `$ENV` (first given wins, in that order); undefined when none is. Whitespace around
 * the token (the newline an editor or `echo` adds) is dropped. Errors name the file or the option at fault.
 */
export function secretOption(name: string, sources: SecretSources): string | undefined {
  if (sources.value !== undefined && sources.file !== undefined) {
    throw new FedSegError(`give --${name} or --${name}-file, not both`, { field: name });
  }
  if (sources.value !== undefined) {
    const token = sources.value.trim();
    if (token === '') throw new FedSegError(`--${name} is empty`, { field: name });
    return token;
  }
  if (sources.file !== undefined) return secretFromFile(name, sources.file, `${name}-file`);
  const fileVariable = `${sources.env}_FILE`;
  const fileFromEnv = process.env[fileVariable]?.trim();
  const fromEnv = process.env[sources.env]?.trim();
  if (fileFromEnv && fromEnv) throw new FedSegError(`set $${sources.env} or $${fileVariable}, not both`, { field: fileVariable });
  if (fileFromEnv) return secretFromFile(name, fileFromEnv, fileVariable);
  return fromEnv ? fromEnv : undefined;
}

/** The first non-empty line of `file`, trimmed; `field` is what the error names (the option or variable). */
function secretFromFile(name: string, file: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FedSegError(`cannot read the ${name} file (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file, field }, { cause: err });
  }
  const token = text.split(/\r?\n/).map((line) => line.trim()).find((line) => line !== '') ?? '';
  if (token === '') throw new FedSegError(`the ${name} file is empty`, { file, field });
  return token;
}

function optionError(name: string, rule: string, text: string): FedSegError {
  return new FedSegError(`--${name} must be ${rule}, got "${text}"`, { field: name });
}

function describeInt(min: number, max: number): string {
  if (Number.isFinite(min) && Number.isFinite(max)) return `an integer from ${min} to ${max}`;
  if (min === 1) return 'a positive integer';
  if (min === 0) return 'a non-negative integer';
  if (Number.isFinite(min)) return `an integer >= ${min}`;
  if (Number.isFinite(max)) return `an integer <= ${max}`;
  return 'an integer';
}
