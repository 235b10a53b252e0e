/**
 * Sandboxed preload (bundled to CommonJS): exposes exactly `window.fedseg`, one function per allow-listed
 * channel of api.ts plus `onEvent`. Nothing of ipcRenderer or Node leaks into the page.
 */
import type { Envelope, FedsegApi, SiteEvent } from './api.js';
import { CHANNELS, EVENT_CHANNEL, IPC_PREFIX } from './channels.js';
import type { ElectronPreload } from '../main/electron-types.js';

// Sandboxed preloads are CommonJS and may obtain electron only through require().
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { contextBridge, ipcRenderer } = require('electron') as ElectronPreload;

async function invoke(channel: string, arg: unknown): Promise<unknown> {
  const envelope = (await ipcRenderer.invoke(IPC_PREFIX + channel, arg)) as Envelope<unknown>;
  if (!envelope.ok) throw new Error(envelope.error);
  return envelope.value;
}

const api: Record<string, unknown> = {
  onEvent(listener: (event: SiteEvent) => void): () => void {
    const wrapped = (_event: unknown, payload: unknown) => listener(payload as SiteEvent);
    ipcRenderer.on(EVENT_CHANNEL, wrapped);
    return () => ipcRenderer.removeListener(EVENT_CHANNEL, wrapped);
  },
};
for (const channel of CHANNELS) api[channel] = (arg?: unknown) => invoke(channel, arg);

contextBridge.exposeInMainWorld('fedseg', api as FedsegApi);
