/**
 * The demo's aggregation server as its own Node process: starts server/ on loopback with the
 * demo's federation config and reports to the demo over IPC (listening URL, round events, the
 * sites' evaluations, the final checkpoint). Server log lines go to stdout (logs/server.log).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../core/errors.js';
import { parseFederationConfig } from '../server/config.js';
import { startServer } from '../server/index.js';
import type { ServerWorkerMessage } from './server-worker-messages.js';

const ArgsSchema = z.object({ dbFile: z.string().min(1), config: z.record(z.string(), z.unknown()) });

function send(message: ServerWorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, () => resolve());
  });
}

async function main(): Promise<number> {
  const args = ArgsSchema.parse(JSON.parse(process.argv[2] ?? '{}'));
  const config = parseFederationConfig(args.config);
  const server = await startServer({ config, dbFile: args.dbFile, port: 0, log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`) });
  const { federation } = server;
  federation.on('round-started', (round, attempt) => void send({ type: 'round-started', round, attempt }));
  federation.on('round-completed', (round, sites) => void send({ type: 'round-completed', round, sites }));
  federation.on('round-abandoned', (round, attempt, reason) => void send({ type: 'round-abandoned', round, attempt, reason }));
  federation.on('update-rejected', (round, site, reason) => void send({ type: 'update-rejected', round, site, reason }));
  federation.on('evaluation', (round, site, metrics) => void send({ type: 'evaluation', round, site, metrics }));
  // Asked to stop (every site gone) or orphaned: shut down cleanly either way.
  process.on('message', (m: unknown) => {
    if ((m as { type?: string } | null)?.type === 'stop') federation.stop();
  });
  process.once('disconnect', () => federation.stop());
  await send({ type: 'listening', wsUrl: server.wsUrl, httpUrl: server.httpUrl });
  const state = await federation.done;
  const last = server.store.completedRounds().at(-1);
  const finalModelFile = last?.checkpoint ? join(federation.checkpoints.dir, last.checkpoint) : null;
  await server.close();
  await send({ type: 'done', state, finalModelFile });
  return 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exit(1);
});
