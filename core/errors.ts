/**
 * The one error type FedSeg raises for bad input. `where` names the file, field or message at
 * fault so the CLI, the server and the app can say exactly what is wrong without a stack trace.
 */
export interface ErrorLocation {
  /** Path of the file at fault. */
  file?: string;
  /** BraTS case id (e.g. BraTS20_Training_001). */
  caseId?: string;
  /** Header field, config key or message field at fault. */
  field?: string;
}

export class FedSegError extends Error {
  readonly where: ErrorLocation;

  constructor(message: string, where: ErrorLocation = {}, options?: { cause?: unknown }) {
    super(formatMessage(message, where), options);
    this.name = 'FedSegError';
    this.where = where;
  }
}

function formatMessage(message: string, where: ErrorLocation): string {
  const parts = [where.caseId && `case ${where.caseId}`, where.file, where.field && `field ${where.field}`].filter(Boolean);
  return parts.length > 0 ? `${parts.join(': ')}: ${message}` : message;
}

/** Message of any thrown value, for places that must report rather than rethrow. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
