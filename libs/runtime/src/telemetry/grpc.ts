/**
 * Trace propagation over gRPC (W3C traceparent/tracestate in the call metadata).
 *
 * Client: add `grpcClientInterceptor()` to the client's `interceptors` (or build the options
 * with `tracedClientOptions`); each call gets a CLIENT span and carries the context.
 * Server: `tracedUnary` / `tracedServerStream` are drop-in replacements for `wrapUnary` /
 * `wrapServerStream`; `withServerSpan(call, name, fn)` is the underlying primitive.
 */
import * as grpc from '@grpc/grpc-js';
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import {
  type HandlerContext,
  toGrpcStatus,
  type WrapOptions,
  wrapServerStream,
  wrapUnary,
} from '../errors.js';
import { getTracer, recordSpanError, runInSpan } from './spans.js';

export const grpcMetadataSetter: TextMapSetter<grpc.Metadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

export const grpcMetadataGetter: TextMapGetter<grpc.Metadata> = {
  keys(carrier) {
    return Object.keys(carrier.getMap());
  },
  get(carrier, key) {
    const values = carrier.get(key).map((v) => (typeof v === 'string' ? v : v.toString('utf8')));
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  },
};

/** "/pkg.Service/Method" → { service: "pkg.Service", method: "Method" }. */
export function splitMethodPath(path: string): { service: string; method: string } {
  const m = /^\/?([^/]+)\/([^/]+)$/.exec(path);
  return m ? { service: m[1]!, method: m[2]! } : { service: 'unknown', method: path };
}

const STATUS_NAMES = grpc.status as unknown as Record<number, string>;

/** Server codes that mean the server failed (OTel semantic conventions); others are the caller's. */
const SERVER_FAULTS = new Set<number>([
  grpc.status.UNKNOWN,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
  grpc.status.DATA_LOSS,
]);

export interface GrpcClientInterceptorOptions {
  tracer?: Tracer;
}

/**
 * A grpc-js client interceptor: starts a CLIENT span "pkg.Service/Method" (child of the active
 * context), injects the context into the outgoing metadata and ends the span with the call's
 * status (non-OK → ERROR). Passes calls straight through when nothing is traced.
 */
export function grpcClientInterceptor(opts: GrpcClientInterceptorOptions = {}): grpc.Interceptor {
  return (options, nextCall) => {
    const { service, method } = splitMethodPath(options.method_definition.path);
    const parent = context.active();
    const span = (opts.tracer ?? getTracer()).startSpan(
      `${service}/${method}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method },
      },
      parent,
    );
    if (!span.isRecording() && !isSpanContextValid(span.spanContext())) {
      return new grpc.InterceptingCall(nextCall(options));
    }
    const ctx = trace.setSpan(parent, span);
    let ended = false;
    const requester: grpc.Requester = {
      start(metadata, _listener, next) {
        propagation.inject(ctx, metadata, grpcMetadataSetter);
        next(metadata, {
          onReceiveStatus(status, nextStatus) {
            if (!ended) {
              ended = true;
              span.setAttribute('rpc.grpc.status_code', status.code);
              if (status.code !== grpc.status.OK) {
                span.setStatus({
                  code: SpanStatusCode.ERROR,
                  message: `${STATUS_NAMES[status.code] ?? status.code}: ${status.details}`,
                });
              }
              span.end();
            }
            nextStatus(status);
          },
        });
      },
    };
    return new grpc.InterceptingCall(nextCall(options), requester);
  };
}

/** Client options with the tracing interceptor added (keeps other interceptors). */
export function tracedClientOptions(
  base: grpc.ClientOptions = {},
  opts: GrpcClientInterceptorOptions = {},
): grpc.ClientOptions {
  return { ...base, interceptors: [grpcClientInterceptor(opts), ...(base.interceptors ?? [])] };
}

/** What `withServerSpan` needs from a server call (every grpc-js server call has it). */
export interface ServerCallLike {
  readonly metadata: grpc.Metadata;
  getPath(): string;
  getPeer?(): string;
}

export interface ServerSpanOptions {
  tracer?: Tracer;
}

/** The status code a handler error will be sent as (the runtime's one mapping). */
export function grpcCodeOf(err: unknown): grpc.status {
  return toGrpcStatus(err).code;
}

/**
 * Runs a server handler in a SERVER span whose parent is the context extracted from the call's
 * metadata (so it joins the caller's trace). The span is named `name` or "pkg.Service/Method",
 * carries rpc.* attributes and `rpc.grpc.status_code` (the code the error maps to); server
 * faults (INTERNAL, UNAVAILABLE, …) set ERROR status, caller errors (INVALID_ARGUMENT, …)
 * only record the exception.
 */
export function withServerSpan<T>(
  call: ServerCallLike,
  name: string | undefined,
  fn: (span: Span) => T | Promise<T>,
  opts: ServerSpanOptions = {},
): Promise<T> {
  const { service, method } = splitMethodPath(call.getPath());
  const parent = propagation.extract(ROOT_CONTEXT, call.metadata, grpcMetadataGetter);
  let peer: string | undefined;
  try {
    peer = call.getPeer?.();
  } catch {
    peer = undefined;
  }
  const span = (opts.tracer ?? getTracer()).startSpan(
    name ?? `${service}/${method}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': service,
        'rpc.method': method,
        ...(peer ? { 'network.peer.address': peer } : {}),
      },
    },
    parent,
  );
  return Promise.resolve(
    runInSpan(span, trace.setSpan(parent, span), async (s) => fn(s), {
      onSuccess: (s) => s.setAttribute('rpc.grpc.status_code', grpc.status.OK),
      onError: (s, err) => {
        const code = grpcCodeOf(err);
        s.setAttribute('rpc.grpc.status_code', code);
        recordSpanError(s, err, SERVER_FAULTS.has(code));
      },
    }),
  );
}

/**
 * Wraps a `wrapUnary` / `wrapServerStream` handler so it runs in a server span:
 * `wrapUnary(traceHandler(async (call, ctx) => …))`.
 */
export function traceHandler<C extends ServerCallLike, R>(
  handler: (call: C, ctx: HandlerContext) => Promise<R> | R,
  opts: ServerSpanOptions & { spanName?: string } = {},
): (call: C, ctx: HandlerContext) => Promise<R> {
  return (call, ctx) => withServerSpan(call, opts.spanName, () => handler(call, ctx), opts);
}

/** `wrapUnary` with a server span around the handler. */
export function tracedUnary<Req, Res>(
  handler: (call: grpc.ServerUnaryCall<Req, Res>, ctx: HandlerContext) => Promise<Res> | Res,
  opts: WrapOptions & ServerSpanOptions & { spanName?: string } = {},
): (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void {
  return wrapUnary(traceHandler(handler, opts), opts);
}

/** `wrapServerStream` with a server span around the handler (ends when the stream ends). */
export function tracedServerStream<Req, Res>(
  handler: (call: grpc.ServerWritableStream<Req, Res>, ctx: HandlerContext) => Promise<void> | void,
  opts: WrapOptions & ServerSpanOptions & { spanName?: string } = {},
): (call: grpc.ServerWritableStream<Req, Res>) => void {
  return wrapServerStream(traceHandler(handler, opts), opts);
}
