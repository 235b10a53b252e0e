/**
 * Browser stand-in for the Electron preload: defines window.fedseg with the same FedsegApi type, carrying each
 * call to the dev bridge over HTTP and events over Server-Sent Events. Bundled by the bridge as a classic
 * script that runs before the renderer; the per-start secret is substituted for __BRIDGE_SECRET__.
 */
import type { Envelope, FedsegApi, SiteEvent } from '../preload/api.js';
import { CHANNELS } from '../preload/channels.js';
import { BINARY_FIELD_HEADER, BRIDGE_PREFIX, JSON_HEADER, SECRET_HEADER } from './wire.js';

declare const __BRIDGE_SECRET__: string;

async function call(channel: string, arg: unknown): Promise<unknown> {
  const headers: Record<string, string> = { [SECRET_HEADER]: __BRIDGE_SECRET__ };
  let body: BodyInit | undefined;
  const binary = arg && typeof arg === 'object' ? Object.entries(arg).find(([, v]) => v instanceof Uint8Array) : undefined;
  if (binary) {
    const rest = { ...(arg as Record<string, unknown>) };
    delete rest[binary[0]];
    headers['content-type'] = 'application/octet-stream';
    headers[JSON_HEADER] = encodeURIComponent(JSON.stringify(rest));
    headers[BINARY_FIELD_HEADER] = binary[0];
    body = binary[1] as Uint8Array<ArrayBuffer>;
  } else if (arg !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(arg);
  }
  let response: Response;
  try {
    response = await fetch(`${BRIDGE_PREFIX}/call/${channel}`, { method: 'POST', headers, body });
  } catch {
    throw new Error('The development bridge is not reachable. Is it still running?');
  }
  if (response.headers.get('content-type')?.startsWith('application/octet-stream')) {
    return new Uint8Array(await response.arrayBuffer());
  }
  const envelope = (await response.json()) as Envelope<unknown>;
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value;
}

const listeners = new Set<(event: SiteEvent) => void>();
const source = new EventSource(`${BRIDGE_PREFIX}/events?secret=${encodeURIComponent(__BRIDGE_SECRET__)}`);
source.onmessage = (message) => {
  const event = JSON.parse(message.data as string) as SiteEvent;
  for (const listener of listeners) listener(event);
};

const api: Record<string, unknown> = {
  onEvent(listener: (event: SiteEvent) => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
for (const channel of CHANNELS) api[channel] = (arg?: unknown) => call(channel, arg);

Object.defineProperty(window, 'fedseg', { value: Object.freeze(api) as FedsegApi, writable: false, configurable: false });
