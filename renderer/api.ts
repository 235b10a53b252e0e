/** The preload (Electron) or the dev-bridge shim (browser) defines window.fedseg; the UI only sees its type. */
import type { FedsegApi } from '../preload/api.js';

declare global {
  interface Window {
    fedseg: FedsegApi;
  }
}

export function api(): FedsegApi {
  if (!window.fedseg) throw new Error('The FedSeg bridge is missing: open the app through Electron or the development bridge.');
  return window.fedseg;
}
