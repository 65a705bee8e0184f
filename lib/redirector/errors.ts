/** Error thrown by lib/redirector for calls that cannot proceed; `op` names the step, `errno` the cause. */
export class RedirectorError extends Error {
  readonly code = 'GPA_ERR_REDIRECTOR';
  readonly op: string;
  readonly errno: number;
  constructor(op: string, message: string, errno = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedirectorError';
    this.op = op;
    this.errno = errno;
  }
}

/** Re-throws an addon error (which carries op/errno) as a RedirectorError. */
export function asRedirectorError(err: unknown, op: string): RedirectorError {
  if (err instanceof RedirectorError) return err;
  const e = err as { message?: string; op?: string; errno?: number };
  return new RedirectorError(e.op ?? op, e.message ?? String(err), e.errno ?? 0, { cause: err });
}
