/**
 * A value supplied by a caller is out of its allowed range. `field` names the offending
 * input (e.g. `encoding[5]`, `width`) so every edge (CLI, gRPC) can report it verbatim.
 */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${message}`, options);
  }
}
