/**
 * Internal spans: `withSpan` runs a function (sync or async) in a child span of the active
 * context, recording exceptions. Names and attribute keys shared by the services live here.
 */
import {
  type Attributes,
  type Context,
  context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { TELEMETRY_SCOPE } from './init.js';

/** Span names for the internal work the issue asks to see. */
export const SPAN_NAMES = Object.freeze({
  /** One PruningNet training epoch (weight-generator). */
  trainEpoch: 'pruningnet.train_epoch',
  /** Cropping weights for one encoding (weight-generator GenerateWeights). */
  generateWeights: 'weightgen.generate',
  /** Batch-norm statistics recalibration of one candidate (evaluator). */
  bnRecalibration: 'evaluation.bn_recalibration',
  /** Validation of one candidate (evaluator). */
  validation: 'evaluation.validate',
  /** A whole evaluation job (evaluator, around the two above). */
  evaluate: 'evaluation.evaluate',
  /** One generation of the evolutionary search (controller). */
  searchGeneration: 'search.generation',
});

/** Attribute keys used on metaprune spans and metrics. */
export const TELEMETRY_ATTRS = Object.freeze({
  searchId: 'metaprune.search.id',
  candidateId: 'metaprune.candidate.id',
  jobId: 'metaprune.job.id',
  generation: 'metaprune.search.generation',
  epoch: 'metaprune.train.epoch',
  network: 'metaprune.network',
  pruningNetVersion: 'metaprune.pruningnet.version',
  outcome: 'metaprune.outcome',
});

/** The tracer the helpers use: the globally registered one (a no-op one when none is). */
export function getTracer(): Tracer {
  return trace.getTracer(TELEMETRY_SCOPE);
}

export interface WithSpanOptions {
  kind?: SpanKind;
  /** Start a new trace instead of a child of the active span. */
  root?: boolean;
  links?: Link[];
  tracer?: Tracer;
}

/** Marks the span failed with the exception (message, type, stack). */
export function recordSpanError(span: Span, err: unknown, setErrorStatus = true): void {
  if (!span.isRecording()) return;
  if (err instanceof Error) {
    span.recordException(err);
    if (setErrorStatus) span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  } else {
    span.recordException(String(err));
    if (setErrorStatus) span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}

export interface RunInSpanHooks {
  onSuccess?: (span: Span) => void;
  /** Replaces the default error handling (recordSpanError). */
  onError?: (span: Span, err: unknown) => void;
}

/**
 * Runs `fn` with `ctx` active and ends `span` when it returns, resolves or throws. A sync
 * function stays sync; a promise is returned as a promise.
 */
export function runInSpan<T>(
  span: Span,
  ctx: Context,
  fn: (span: Span) => T,
  hooks: RunInSpanHooks = {},
): T {
  const fail = (err: unknown): void => {
    if (hooks.onError) hooks.onError(span, err);
    else recordSpanError(span, err);
    span.end();
  };
  let result: T;
  try {
    result = context.with(ctx, fn, undefined, span);
  } catch (err) {
    fail(err);
    throw err;
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      (value) => {
        hooks.onSuccess?.(span);
        span.end();
        return value;
      },
      (err: unknown) => {
        fail(err);
        throw err;
      },
    ) as T;
  }
  hooks.onSuccess?.(span);
  span.end();
  return result;
}

/**
 * Runs `fn` in an internal span named `name` (child of the active span), ends it when `fn`
 * returns or settles, and records a thrown error (exception event + ERROR status) before
 * rethrowing it. Works for sync and async functions.
 */
export function withSpan<T>(
  name: string,
  fn: (span: Span) => T,
  attributes?: Attributes,
  opts: WithSpanOptions = {},
): T {
  const parent = opts.root ? ROOT_CONTEXT : context.active();
  const span = (opts.tracer ?? getTracer()).startSpan(
    name,
    {
      kind: opts.kind ?? SpanKind.INTERNAL,
      ...(attributes ? { attributes } : {}),
      ...(opts.links ? { links: opts.links } : {}),
      ...(opts.root ? { root: true } : {}),
    },
    parent,
  );
  return runInSpan(span, trace.setSpan(parent, span), fn);
}

/** `{trace_id, span_id}` of the active span, to add to log lines; `{}` when there is none. */
export function traceLogFields(ctx: Context = context.active()): {
  trace_id?: string;
  span_id?: string;
} {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

export type { Context as TraceContext, Span } from '@opentelemetry/api';

/** The active trace context (to start spans in it later, e.g. from a background job). */
export function activeTraceContext(): Context {
  return context.active();
}

/**
 * Starts an INTERNAL span `name` as a child of `parent` (default: the active context; a new
 * root when `parent` holds no span). The caller ends it.
 */
export function startSpan(name: string, attributes?: Attributes, parent?: Context): Span {
  return getTracer().startSpan(
    name,
    { kind: SpanKind.INTERNAL, ...(attributes ? { attributes } : {}) },
    parent ?? context.active(),
  );
}
