/**
 * Messages between the host (Electron main or the dev bridge) and the site-runtime process. The host has
 * already validated every request against preload/api.ts; the service process re-parses it anyway because it
 * is a separate trust boundary that must never act on a malformed message.
 */
import type { Channel, Envelope, SiteEvent } from '../../preload/api.js';

export interface CallMessage { kind: 'call'; id: number; channel: Channel; arg: unknown }
/** First message: where this site's settings, review marks, audit and models live. */
export interface InitMessage { kind: 'init'; dataDir: string }
export type HostToService = CallMessage | InitMessage;

export interface ResultMessage { kind: 'result'; id: number; envelope: Envelope<unknown> }
export interface EventMessage { kind: 'event'; event: SiteEvent }
export type ServiceToHost = ResultMessage | EventMessage;

/** Transport-neutral view of the channel to the service process (utilityProcess or child_process). */
export interface ServicePort {
  post(message: HostToService): void;
  onMessage(listener: (message: ServiceToHost) => void): void;
  onExit(listener: (code: number | null) => void): void;
  kill(): void;
}
