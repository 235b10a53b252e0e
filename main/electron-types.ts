/**
 * The slice of Electron's API the shell uses. Electron is an optional dependency whose binary (and types) may be
 * absent, so main/ loads it dynamically and types it against this interface; everything compiles either way.
 */
export interface WebContents {
  send(channel: string, ...args: unknown[]): void;
  on(event: 'will-navigate' | 'will-redirect', listener: (event: { preventDefault(): void }, url: string) => void): void;
  /** The page's beforeunload handler asked to stay (unsaved edits); preventDefault lets it unload anyway. */
  on(event: 'will-prevent-unload', listener: (event: { preventDefault(): void }) => void): void;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
  getURL(): string;
}

export interface BrowserWindowInstance {
  webContents: WebContents;
  focus(): void;
  loadURL(url: string): Promise<void>;
  once(event: 'ready-to-show', listener: () => void): void;
  show(): void;
  isDestroyed(): boolean;
}

export interface UtilityProcessInstance {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): void;
  on(event: 'exit', listener: (code: number) => void): void;
  on(event: 'spawn', listener: () => void): void;
  kill(): boolean;
}

export interface IpcMainInvokeEvent {
  senderFrame: { url: string } | null;
}

export interface ElectronMain {
  app: {
    whenReady(): Promise<void>;
    getPath(name: 'userData'): string;
    on(event: 'window-all-closed' | 'before-quit', listener: () => void): void;
    on(event: 'web-contents-created', listener: (event: unknown, contents: WebContents) => void): void;
    quit(): void;
    isPackaged: boolean;
  };
  BrowserWindow: new (options: Record<string, unknown>) => BrowserWindowInstance;
  ipcMain: { handle(channel: string, handler: (event: IpcMainInvokeEvent, arg: unknown) => Promise<unknown>): void };
  protocol: {
    registerSchemesAsPrivileged(schemes: Array<{ scheme: string; privileges: Record<string, boolean> }>): void;
    handle(scheme: string, handler: (request: Request) => Promise<Response> | Response): void;
  };
  session: {
    defaultSession: {
      webRequest: {
        onHeadersReceived(listener: (
          details: { responseHeaders?: Record<string, string[]> },
          callback: (response: { responseHeaders: Record<string, string[]> }) => void,
        ) => void): void;
      };
      setPermissionRequestHandler(handler: (contents: unknown, permission: string, callback: (granted: boolean) => void) => void): void;
      setPermissionCheckHandler(handler: (contents: unknown, permission: string) => boolean): void;
    };
  };
  net: { fetch(url: string): Promise<Response> };
  utilityProcess: { fork(modulePath: string, args: string[], options: Record<string, unknown>): UtilityProcessInstance };
  safeStorage: {
    isEncryptionAvailable(): boolean;
    getSelectedStorageBackend?(): string;
    encryptString(plain: string): Buffer;
    decryptString(encrypted: Buffer): string;
  };
  Notification: (new (options: { title: string; body: string }) => { show(): void; on(event: 'click', listener: () => void): void }) & { isSupported(): boolean };
  dialog: {
    showOpenDialog(options: Record<string, unknown>): Promise<{ canceled: boolean; filePaths: string[] }>;
    showMessageBoxSync(window: BrowserWindowInstance, options: { type: string; buttons: string[]; defaultId: number; cancelId: number; message: string; detail: string }): number;
  };
}

export interface ElectronPreload {
  contextBridge: { exposeInMainWorld(key: string, api: unknown): void };
  ipcRenderer: {
    invoke(channel: string, arg?: unknown): Promise<unknown>;
    on(channel: string, listener: (event: unknown, payload: unknown) => void): void;
    removeListener(channel: string, listener: (event: unknown, payload: unknown) => void): void;
  };
}
