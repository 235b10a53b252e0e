/** Runs the CLI on this process's arguments: what bin/fedseg.js starts (compiled), and what a command re-runs in a child. */
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
