import { status } from '@grpc/grpc-js';
import { InvalidArgumentError, MetapruneError } from '@metaprune/runtime';

/**
 * A checkpoint on disk fails its checksum, is truncated or unreadable. Maps to DATA_LOSS:
 * retrying the same version cannot help; other versions may still serve.
 */
export class CheckpointCorruptError extends MetapruneError {
  readonly grpcCode = status.DATA_LOSS;
  constructor(
    readonly checkpoint: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`checkpoint ${checkpoint} is corrupted and was refused: ${reason}`, options);
  }
}

/** Turns a ValidationError-like error (`field` + "field: message") into InvalidArgumentError. */
export function toInvalidArgument(
  err: unknown,
  fieldMap: (field: string) => string = (f) => f,
): Error {
  if (
    err instanceof Error &&
    typeof (err as { field?: unknown }).field === 'string' &&
    err.name === 'ValidationError'
  ) {
    const field = (err as unknown as { field: string }).field;
    const prefix = `${field}: `;
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    return new InvalidArgumentError(fieldMap(field), message, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
