import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { errorMessage, FedSegError } from '../core/errors.js';
import { ownModuleFile } from '../core/runtime/own-module.js';
import type { CliCommand } from './command.js';

/** Subcommands, each in cli/commands/<name>.ts, loaded on demand so start-up stays fast. */
const COMMANDS = [
  'synth', 'inspect', 'validate', 'preprocess', 'metrics', 'train', 'segment',
  'server', 'site', 'demo', 'experiment', 'bench',
] as const;

async function load(name: string): Promise<CliCommand> {
  const file = ownModuleFile(new URL(`./commands/${name}.js`, import.meta.url));
  if (!existsSync(file)) throw new FedSegError(`command "${name}" is not available in this build`);
  return (await import(pathToFileURL(file).href)).default as CliCommand;
}

async function help(): Promise<string> {
  const lines = ['Usage: fedseg <command> [options]   (every command takes --json)', '', 'Commands:'];
  for (const name of COMMANDS) {
    const summary = await load(name).then((c) => c.summary, () => '(not built yet)');
    lines.push(`  ${name.padEnd(11)} ${summary}`);
  }
  lines.push('', 'fedseg help <command> shows its options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const wantsJson = rest.includes('--json');
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      const topic = rest[0];
      process.stdout.write(`${topic ? (await load(topic)).usage : await help()}\n`);
      return 0;
    }
    if (!(COMMANDS as readonly string[]).includes(name)) {
      throw new FedSegError(`unknown command "${name}"; run "fedseg help" for the list`);
    }
    const command = await load(name);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${command.usage}\n`);
      return 0;
    }
    return await command.run(rest);
  } catch (err) {
    const known = err instanceof FedSegError || isArgError(err);
    const message = errorMessage(err);
    if (wantsJson) process.stdout.write(`${JSON.stringify({ ok: false, error: message })}\n`);
    process.stderr.write(`fedseg ${name ?? ''}: ${known ? message : `internal error: ${(err as Error)?.stack ?? message}`}\n`);
    return known ? 1 : 2;
  }
}

function isArgError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}
