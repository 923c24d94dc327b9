/**
 * The mapping of the gRPC errors of the services the console reads (controller, weight
 * generator, latency profiler) onto HTTP statuses. Their clients are in @metaprune/wire.
 */
import * as grpc from '@grpc/grpc-js';
import { FIELD_METADATA_KEY } from '@metaprune/runtime';

/** An error the HTTP layer answers with `status` and `{error, field?}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const HTTP_OF_GRPC: Partial<Record<grpc.status, number>> = {
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.OUT_OF_RANGE]: 400,
  [grpc.status.FAILED_PRECONDITION]: 409,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.ABORTED]: 409,
  [grpc.status.UNAUTHENTICATED]: 401,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.RESOURCE_EXHAUSTED]: 429,
  [grpc.status.UNAVAILABLE]: 503,
  [grpc.status.DEADLINE_EXCEEDED]: 504,
  [grpc.status.UNIMPLEMENTED]: 501,
};

/** A gRPC error as an HttpError (the service's message, and the field it names). */
export function httpErrorOf(err: unknown, what: string): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === 'number') {
    const status = HTTP_OF_GRPC[e.code as grpc.status] ?? 502;
    const field = e.metadata?.get(FIELD_METADATA_KEY)[0];
    const details = e.details || e.message || 'error';
    return new HttpError(
      status,
      status === 503 || status === 504 ? `${what} is not reachable: ${details}` : details,
      typeof field === 'string' ? field : undefined,
    );
  }
  return new HttpError(500, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}
