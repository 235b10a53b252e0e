/**
 * Turns anything thrown in the site runtime into one sentence a radiographer can act on. Known failures
 * (bad input, network) keep their message; anything else is logged with its stack by the caller and shown
 * as a generic sentence, never as a stack trace.
 */
import { FedSegError } from '../../core/errors.js';
import { RequestError } from '../../preload/api.js';

/** An error whose message is already plain words meant for the user. */
export class UserFacingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserFacingError';
  }
}

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'The federation server is unreachable (connection refused). Check the server address and that the server is running.',
  ENOTFOUND: 'The federation server address could not be found. Check the server address.',
  ETIMEDOUT: 'The federation server did not answer in time. Check the network connection.',
  ECONNRESET: 'The connection to the federation server was interrupted.',
  EACCES: 'Permission denied while reading or writing a file.',
  ENOENT: 'A file or folder does not exist.',
  ENOSPC: 'The disk is full.',
};

export function plainMessage(err: unknown): { message: string; known: boolean } {
  if (err instanceof UserFacingError || err instanceof FedSegError || err instanceof RequestError) {
    return { message: err.message, known: true };
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES[code]) {
    const path = (err as { path?: unknown }).path;
    return { message: typeof path === 'string' ? `${NETWORK_CODES[code]} (${path})` : NETWORK_CODES[code], known: true };
  }
  return { message: 'Something went wrong in the site runtime. The details are in the site log.', known: false };
}
