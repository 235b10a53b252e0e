/**
 * Entry of the site-runtime process. Speaks the protocol.ts messages over Electron's parentPort when run as
 * a utilityProcess, or over Node's IPC channel when forked by the dev bridge.
 */
import type { HostToService, ServiceToHost } from './host-messages.js';
import { SiteService } from './site-service.js';

interface ParentPort {
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
  postMessage(message: unknown): void;
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;

function send(message: ServiceToHost): void {
  if (parentPort) parentPort.postMessage(message);
  else process.send?.(message);
}

function onMessage(listener: (message: HostToService) => void): void {
  if (parentPort) parentPort.on('message', (event) => listener(event.data as HostToService));
  else process.on('message', (message) => listener(message as HostToService));
}

let service: SiteService | null = null;
const queued: HostToService[] = [];

async function handle(message: HostToService): Promise<void> {
  if (message.kind === 'init') {
    service = new SiteService(message.dataDir, (event) => send({ kind: 'event', event }), (text) => console.error(text));
    service.init();
    for (const waiting of queued.splice(0)) void handle(waiting);
    return;
  }
  if (!service) {
    queued.push(message);
    return;
  }
  send({ kind: 'result', id: message.id, envelope: await service.call(message.channel, message.arg) });
}

onMessage((message) => void handle(message));
process.on('disconnect', () => void service?.shutdown().finally(() => process.exit(0)));
