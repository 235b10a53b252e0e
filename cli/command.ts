/** What every `fedseg` subcommand module exports. */
export interface CliCommand {
  /** One line for `fedseg help`. */
  summary: string;
  /** Full usage text, printed by `fedseg help <cmd>` and on argument errors. */
  usage: string;
  /** Runs the command; resolves to the process exit code. Throws FedSegError for bad input. */
  run(args: string[]): Promise<number>;
}

/** Prints a result either as JSON (for `--json`) or as human text. */
export function printResult(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}
