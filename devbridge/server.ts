/**
 * `node --import tsx devbridge/server.ts [--data-dir DIR] [--port N]`: runs the app's UI in any browser
 * against the real site runtime, for development and for the Playwright tests.
 */
import { join } from 'node:path';
import { homedir } from 'node:os';
import { parseArgs } from 'node:util';
import { startBridge } from './bridge.js';

const { values } = parseArgs({
  options: { 'data-dir': { type: 'string' }, port: { type: 'string' } },
});
const bridge = await startBridge({
  dataDir: values['data-dir'] ?? join(homedir(), '.fedseg-devbridge'),
  port: values.port ? Number(values.port) : 5180,
});
console.log(`FedSeg development bridge: open ${bridge.url}`);
const stop = () => void bridge.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
