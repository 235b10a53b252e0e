/**
 * Electron main process: one locked-down window (context isolation, sandbox, no Node in the page, strict CSP,
 * no navigation, no new windows, no permissions), the typed IPC allow-list of preload/api.ts, and the site
 * runtime in a separate utilityProcess so training and inference never block the UI.
 */
import { join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CHANNELS, EVENT_CHANNEL, IPC_PREFIX } from '../preload/api.js';
import { CONTENT_SECURITY_POLICY } from '../renderer/csp.js';
import type { ElectronMain, BrowserWindowInstance, IpcMainInvokeEvent, WebContents } from './electron-types.js';
import { Host } from './host/host.js';
import { TokenStore, type SecretCodec } from './host/token-store.js';
import type { ServicePort, ServiceToHost } from './service/host-messages.js';

const SCHEME = 'app';
const ORIGIN = `${SCHEME}://fedseg`;
const here = fileURLToPath(new URL('.', import.meta.url));
/** Layout written by main/build.mjs: dist-electron/{main,preload,service}; the renderer build in renderer/dist. */
const PRELOAD = join(here, '../preload/index.cjs');
const SERVICE = join(here, '../service/entry.js');
const RENDERER_ROOT = normalize(join(here, '../../renderer/dist'));

const ELECTRON_MODULE = 'electron';
const loaded = (await import(ELECTRON_MODULE)) as ElectronMain & { default?: ElectronMain };
const electron: ElectronMain = loaded.default ?? loaded;
const { app, BrowserWindow, ipcMain, protocol, session, net, utilityProcess, safeStorage, dialog, Notification } = electron;

protocol.registerSchemesAsPrivileged([{ scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

function keychainCodec(): SecretCodec {
  const backend = safeStorage.getSelectedStorageBackend?.() ?? 'os';
  const encrypted = safeStorage.isEncryptionAvailable() && backend !== 'basic_text';
  return {
    encrypted,
    encode: (plain) => safeStorage.encryptString(plain),
    decode: (stored) => safeStorage.decryptString(stored),
  };
}

function startSiteRuntime(): ServicePort {
  const child = utilityProcess.fork(SERVICE, [], { serviceName: 'FedSeg site runtime', stdio: 'inherit' });
  // Messages posted before the process has spawned are held back and sent in order once it has.
  let spawned = false;
  const waiting: unknown[] = [];
  child.on('spawn', () => {
    spawned = true;
    for (const message of waiting.splice(0)) child.postMessage(message);
  });
  return {
    post: (message) => (spawned ? child.postMessage(message) : void waiting.push(message)),
    onMessage: (listener) => child.on('message', (message) => listener(message as ServiceToHost)),
    onExit: (listener) => child.on('exit', (code) => listener(code)),
    kill: () => void child.kill(),
  };
}

/** Serves renderer/dist under app://fedseg/ with the CSP header; refuses anything outside that folder. */
async function serveRenderer(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const relative = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
  const file = normalize(join(RENDERER_ROOT, relative));
  if (url.host !== 'fedseg' || !file.startsWith(RENDERER_ROOT + sep)) return new Response('not found', { status: 404 });
  const response = await net.fetch(pathToFileURL(file).href);
  const headers = new Headers(response.headers);
  headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  headers.set('X-Content-Type-Options', 'nosniff');
  if (file.endsWith('.js')) headers.set('Content-Type', 'text/javascript');
  return new Response(response.body, { status: response.status, headers });
}

function lockDown(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

/** Only the app's own page may call the API (URL.origin is "null" for custom schemes, so compare parts). */
function isTrustedSender(event: IpcMainInvokeEvent): boolean {
  if (!event.senderFrame) return false;
  const url = new URL(event.senderFrame.url);
  return url.protocol === `${SCHEME}:` && url.host === 'fedseg';
}

function createWindow(): BrowserWindowInstance {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    show: false,
    title: 'FedSeg',
    backgroundColor: '#111318',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  // Closing or reloading with unsaved mask edits: the page refused to unload; ask, as a browser would.
  win.webContents.on('will-prevent-unload', (event) => {
    const choice = dialog.showMessageBoxSync(win, {
      type: 'warning', buttons: ['Discard edits and close', 'Stay'], defaultId: 1, cancelId: 1,
      message: 'The mask has unsaved edits.', detail: 'Save it as final first, or the edits are lost.',
    });
    if (choice === 0) event.preventDefault();
  });
  void win.loadURL(`${ORIGIN}/index.html`);
  return win;
}

async function main(): Promise<void> {
  await app.whenReady();
  app.on('web-contents-created', (_event, contents) => lockDown(contents));
  const defaultSession = session.defaultSession;
  defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  // Permission checks (e.g. navigator.permissions.query, clipboard, media) answer "denied" too.
  defaultSession.setPermissionCheckHandler(() => false);
  defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
  });
  protocol.handle(SCHEME, serveRenderer);

  // FEDSEG_DATA_DIR lets a site keep its state elsewhere (e.g. an encrypted volume) and isolates tests.
  const dataDir = process.env.FEDSEG_DATA_DIR ?? join(app.getPath('userData'), 'site');
  const host = new Host({
    port: startSiteRuntime(),
    tokens: new TokenStore(join(dataDir, 'token.bin'), keychainCodec()),
    dataDir,
    capabilities: { folderDialog: true, shell: 'electron' },
    chooseFolder: async () => {
      const result = await dialog.showOpenDialog({ title: 'Choose a BraTS folder', properties: ['openDirectory'] });
      return result.canceled ? null : (result.filePaths[0] ?? null);
    },
    log: (level, message) => (level === 'error' ? console.error(message) : console.log(message)),
  });

  for (const channel of CHANNELS) {
    ipcMain.handle(IPC_PREFIX + channel, async (event, arg) => {
      if (!isTrustedSender(event)) return { ok: false, error: 'request from an untrusted page' };
      return host.call(channel, arg);
    });
  }

  const win = createWindow();
  // A round waiting for the admin gets an OS notification once per announcement (round and attempt).
  let notified = '';
  host.onEvent((event) => {
    if (!win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, event);
    const pending = event.type === 'state' ? event.state.pendingRound : null;
    const key = pending ? `${pending.round}:${pending.approval?.attempt ?? 1}` : '';
    if (pending && key !== notified && Notification.isSupported()) {
      notified = key;
      const total = pending.approval ? ` of ${pending.approval.totalRounds}` : '';
      const notice = new Notification({
        title: `FedSeg: round ${pending.round}${total} waits for approval`,
        body: pending.deadline ? `Decide by ${new Date(pending.deadline).toLocaleTimeString()} or the site is left out of this round.` : 'Open FedSeg to approve or decline.',
      });
      notice.on('click', () => !win.isDestroyed() && win.focus());
      notice.show();
    }
  });
  app.on('before-quit', () => host.shutdown());
  app.on('window-all-closed', () => app.quit());
}

void main();
