/**
 * Promise-shaped calls to the services the console reads (controller, weight generator,
 * latency profiler) and the mapping of their gRPC errors onto HTTP statuses.
 */
import * as grpc from '@grpc/grpc-js';
import { controller, weightgen } from '@metaprune/proto';
import { envClient, FIELD_METADATA_KEY, grpcClientOptions } from '@metaprune/runtime';

type UnaryFn<Req, Res> = (
  req: Req,
  meta: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls one unary method with a deadline. */
export function unary<Req, Res>(
  client: grpc.Client,
  method: unknown,
  req: Req,
  deadlineMs = 10_000,
  meta: grpc.Metadata = new grpc.Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) => {
    (method as UnaryFn<Req, Res>).call(
      client,
      req,
      meta,
      { deadline: new Date(Date.now() + deadlineMs) },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

/** TLS and token from METAPRUNE_TLS_CA / _CERT / _KEY / _SERVER_NAME and METAPRUNE_TOKEN. */
export function searchClient(address: string): controller.SearchServiceClient {
  const c = envClient(grpcClientOptions());
  return new controller.SearchServiceClient(address, c.credentials, c.options);
}

/**
 * A weight generator client. `longCalls`: no keepalive pings on the connection — an
 * export keeps the weight generator's event loop busy for many seconds, and an unanswered
 * ping (10 s) would drop the connection under the call ("Connection dropped").
 */
export function weightGeneratorClient(
  address: string,
  opts: { longCalls?: boolean } = {},
): weightgen.WeightGeneratorServiceClient {
  const c = envClient({
    ...grpcClientOptions(),
    ...(opts.longCalls
      ? { 'grpc.keepalive_time_ms': 2 ** 31 - 1, 'grpc.keepalive_permit_without_calls': 0 }
      : {}),
  });
  return new weightgen.WeightGeneratorServiceClient(address, c.credentials, c.options);
}

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
