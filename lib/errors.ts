/** Stable error codes for failures an operator or caller can see. Documented in docs/errors.md. */
export const ErrorCodes = {
  GPA_ERR_CONFIG: 'invalid configuration',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error with a stable code and a message that names the thing and the fix. */
export class GpaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'GpaError';
  }
}
