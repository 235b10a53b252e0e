/**
 * The UI-facing half of the app, shared by Electron's main process and the dev bridge: it validates every
 * request against preload/api.ts, keeps the site token (which only it can decrypt), and forwards the rest to
 * the site-runtime process. Results and events come back as plain-words envelopes.
 */
import {
  isChannel, parseRequest, type AppState, type Channel, type Envelope, type SiteEvent,
} from '../../preload/api.js';
import { plainMessage, UserFacingError } from '../service/errors.js';
import type { ServicePort, ServiceToHost } from '../service/host-messages.js';
import type { TokenStore } from './token-store.js';

export interface HostOptions {
  port: ServicePort;
  tokens: TokenStore;
  dataDir: string;
  capabilities: AppState['capabilities'];
  /** Native folder picker (Electron); the browser bridge has none. */
  chooseFolder?: () => Promise<string | null>;
  log: (level: 'info' | 'error', message: string) => void;
}

export class Host {
  private nextId = 1;
  private readonly pending = new Map<number, (envelope: Envelope<unknown>) => void>();
  private readonly listeners = new Set<(event: SiteEvent) => void>();
  private exited = false;

  constructor(private readonly options: HostOptions) {
    options.port.onMessage((message) => this.receive(message));
    options.port.onExit((code) => {
      this.exited = true;
      options.log('error', `site runtime exited with code ${code}`);
      for (const resolve of this.pending.values()) resolve({ ok: false, error: 'The site runtime stopped unexpectedly. Restart the app.' });
      this.pending.clear();
    });
    options.port.post({ kind: 'init', dataDir: options.dataDir });
  }

  onEvent(listener: (event: SiteEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Entry point for an untrusted request from the renderer. */
  async call(channel: string, arg: unknown): Promise<Envelope<unknown>> {
    try {
      if (!isChannel(channel)) throw new UserFacingError(`unknown request "${channel.slice(0, 40)}"`);
      const request = parseRequest(channel, arg);
      if (channel === 'chooseFolder') {
        return { ok: true, value: this.options.chooseFolder ? await this.options.chooseFolder() : null };
      }
      if (channel === 'connect') return await this.connect(request as { serverUrl: string; token?: string });
      const envelope = await this.forward(channel, request);
      return this.decorate(envelope);
    } catch (err) {
      const { message, known } = plainMessage(err);
      if (!known) this.options.log('error', (err as Error)?.stack ?? String(err));
      return { ok: false, error: message };
    }
  }

  shutdown(): void {
    this.options.port.kill();
  }

  private async connect(request: { serverUrl: string; token?: string }): Promise<Envelope<unknown>> {
    const token = request.token ?? this.options.tokens.load();
    if (!token) throw new UserFacingError('No site token is saved. Enter the token the federation operator gave you.');
    const envelope = await this.forward('connect', { serverUrl: request.serverUrl, token });
    // Store the token only once the service accepted the request (admin unlocked, URL valid).
    if (envelope.ok && request.token) this.options.tokens.save(request.token);
    return this.decorate(envelope);
  }

  private forward(channel: Channel, arg: unknown): Promise<Envelope<unknown>> {
    if (this.exited) return Promise.resolve({ ok: false, error: 'The site runtime is not running. Restart the app.' });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.options.port.post({ kind: 'call', id, channel, arg });
    });
  }

  private receive(message: ServiceToHost): void {
    if (message.kind === 'result') {
      const resolve = this.pending.get(message.id);
      this.pending.delete(message.id);
      resolve?.(message.envelope);
    } else if (message.kind === 'event') {
      const event = message.event.type === 'state' ? { ...message.event, state: this.decorateState(message.event.state) } : message.event;
      for (const listener of this.listeners) listener(event);
    }
  }

  private decorate(envelope: Envelope<unknown>): Envelope<unknown> {
    if (!envelope.ok || !isAppState(envelope.value)) return envelope;
    return { ok: true, value: this.decorateState(envelope.value) };
  }

  /** Token facts and shell capabilities are known here, not in the service process. */
  private decorateState(state: AppState): AppState {
    return {
      ...state,
      saved: { ...state.saved, hasToken: this.options.tokens.has(), tokenEncrypted: this.options.tokens.encrypted },
      capabilities: this.options.capabilities,
    };
  }
}

function isAppState(value: unknown): value is AppState {
  return typeof value === 'object' && value !== null && 'connection' in value && 'saved' in value;
}
