/**
 * Typed errors and the single mapping from them to gRPC statuses.
 *
 * Services throw these from handlers; `wrapUnary` / `wrapServerStream` turn them into a gRPC
 * status via `toGrpcStatus`. Anything else becomes INTERNAL with a generic message and a
 * reference id (the full error is logged server-side, never sent to the client).
 */
import { randomBytes } from 'node:crypto';
import {
  Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { type Logger, nullLogger } from './log.js';

export interface MetapruneErrorOptions {
  cause?: unknown;
}

/** Base class of every typed error; `grpcCode` is the status it maps to. */
export abstract class MetapruneError extends Error {
  abstract readonly grpcCode: status;
  constructor(message: string, options?: MetapruneErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A request field is invalid. The message names the field and what is allowed. */
export class InvalidArgumentError extends MetapruneError {
  readonly grpcCode = status.INVALID_ARGUMENT;
  /** e.g. "population" or "budgets[2].maxMacs". */
  readonly field: string;
  constructor(field: string, message: string, options?: MetapruneErrorOptions) {
    super(`invalid ${field}: ${message}`, options);
    this.field = field;
  }
}

export class NotFoundError extends MetapruneError {
  readonly grpcCode = status.NOT_FOUND;
}
export class AlreadyExistsError extends MetapruneError {
  readonly grpcCode = status.ALREADY_EXISTS;
}
export class FailedPreconditionError extends MetapruneError {
  readonly grpcCode = status.FAILED_PRECONDITION;
}
export class UnauthenticatedError extends MetapruneError {
  readonly grpcCode = status.UNAUTHENTICATED;
}
export class PermissionDeniedError extends MetapruneError {
  readonly grpcCode = status.PERMISSION_DENIED;
}
export class ResourceExhaustedError extends MetapruneError {
  readonly grpcCode = status.RESOURCE_EXHAUSTED;
}
export class UnavailableError extends MetapruneError {
  readonly grpcCode = status.UNAVAILABLE;
}
export class CancelledError extends MetapruneError {
  readonly grpcCode = status.CANCELLED;
}
export class DeadlineExceededError extends MetapruneError {
  readonly grpcCode = status.DEADLINE_EXCEEDED;
}
export class InternalError extends MetapruneError {
  readonly grpcCode = status.INTERNAL;
}

export interface RangeSpec {
  min?: number;
  max?: number;
  integer?: boolean;
}

function describeRange(spec: RangeSpec): string {
  const kind = spec.integer ? 'an integer' : 'a finite number';
  if (spec.min !== undefined && spec.max !== undefined)
    return `${kind} in [${spec.min}, ${spec.max}]`;
  if (spec.min !== undefined) return `${kind} >= ${spec.min}`;
  if (spec.max !== undefined) return `${kind} <= ${spec.max}`;
  return kind;
}

/**
 * Checks a numeric request field (rejects NaN, ±Infinity, non-integers when `integer`, and
 * values out of range) and returns it; throws InvalidArgumentError naming the field and range.
 */
export function requireNumber(field: string, value: unknown, spec: RangeSpec = {}): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!spec.integer || Number.isInteger(value)) &&
    (spec.min === undefined || value >= spec.min) &&
    (spec.max === undefined || value <= spec.max);
  if (!ok) {
    throw new InvalidArgumentError(field, `must be ${describeRange(spec)}, got ${String(value)}`);
  }
  return value as number;
}

/** The metadata key carrying the offending field of an INVALID_ARGUMENT status. */
export const FIELD_METADATA_KEY = 'metaprune-field';
/** The metadata key carrying the reference id of an INTERNAL status (matches the server log). */
export const ERROR_REF_METADATA_KEY = 'metaprune-error-ref';

export interface GrpcStatusObject {
  code: status;
  details: string;
  metadata: Metadata;
}

export interface ToGrpcStatusOptions {
  /** Called for errors that map to INTERNAL (unexpected ones), with the reference id sent. */
  onInternal?: (err: unknown, ref: string) => void;
}

function isGrpcServiceError(err: unknown): err is { code: number; details: string } {
  return (
    err instanceof Error &&
    typeof (err as { code?: unknown }).code === 'number' &&
    typeof (err as { details?: unknown }).details === 'string' &&
    (err as { metadata?: unknown }).metadata instanceof Metadata
  );
}

/**
 * The one mapping from errors to gRPC statuses.
 * - MetapruneError subclasses → their code and message (+ field metadata for invalid args).
 * - AbortError (an aborted signal) → CANCELLED.
 * - an error from a downstream gRPC call → UNAVAILABLE / DEADLINE_EXCEEDED / CANCELLED are
 *   passed on with a generic message; other downstream codes become INTERNAL.
 * - anything else → INTERNAL "internal error (ref …)", without message or stack.
 */
export function toGrpcStatus(err: unknown, opts: ToGrpcStatusOptions = {}): GrpcStatusObject {
  const metadata = new Metadata();
  if (err instanceof MetapruneError) {
    if (err instanceof InvalidArgumentError) metadata.set(FIELD_METADATA_KEY, err.field);
    if (err.grpcCode !== status.INTERNAL) {
      return { code: err.grpcCode, details: err.message, metadata };
    }
  }
  if (err instanceof Error && err.name === 'AbortError') {
    return { code: status.CANCELLED, details: 'cancelled', metadata };
  }
  if (isGrpcServiceError(err)) {
    const passOn: Partial<Record<number, string>> = {
      [status.UNAVAILABLE]: 'a downstream service is unavailable',
      [status.DEADLINE_EXCEEDED]: 'a downstream call exceeded its deadline',
      [status.CANCELLED]: 'a downstream call was cancelled',
    };
    const details = passOn[err.code];
    if (details !== undefined) return { code: err.code as status, details, metadata };
  }
  const ref = randomBytes(6).toString('hex');
  opts.onInternal?.(err, ref);
  metadata.set(ERROR_REF_METADATA_KEY, ref);
  const details =
    err instanceof InternalError ? `${err.message} (ref ${ref})` : `internal error (ref ${ref})`;
  return { code: status.INTERNAL, details, metadata };
}

/** Turns a status received by a gRPC client back into the typed error (for service chains). */
export function fromGrpcError(err: unknown): Error {
  if (!isGrpcServiceError(err)) return err instanceof Error ? err : new Error(String(err));
  const { details } = err;
  const cause = { cause: err };
  switch (err.code) {
    case status.INVALID_ARGUMENT: {
      const meta = (err as unknown as { metadata: Metadata }).metadata.get(FIELD_METADATA_KEY);
      const field = String(meta[0] ?? 'request');
      const prefix = `invalid ${field}: `;
      return new InvalidArgumentError(
        field,
        details.startsWith(prefix) ? details.slice(prefix.length) : details,
        cause,
      );
    }
    case status.NOT_FOUND:
      return new NotFoundError(details, cause);
    case status.ALREADY_EXISTS:
      return new AlreadyExistsError(details, cause);
    case status.FAILED_PRECONDITION:
      return new FailedPreconditionError(details, cause);
    case status.UNAUTHENTICATED:
      return new UnauthenticatedError(details, cause);
    case status.PERMISSION_DENIED:
      return new PermissionDeniedError(details, cause);
    case status.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(details, cause);
    case status.UNAVAILABLE:
      return new UnavailableError(details, cause);
    case status.CANCELLED:
      return new CancelledError(details, cause);
    case status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(details, cause);
    default:
      return new InternalError(details, cause);
  }
}

export interface WrapOptions {
  /** Logs unexpected (INTERNAL) errors with their reference id. */
  logger?: Logger;
}

function internalLogger(logger: Logger, method: string) {
  return (err: unknown, ref: string) =>
    logger.error('unhandled error in gRPC handler', { method, ref, err });
}

/** Context passed to wrapped handlers. */
export interface HandlerContext {
  /** Aborted when the client cancels the call or its deadline passes. */
  signal: AbortSignal;
}

function callSignal(call: { on(event: 'cancelled', cb: () => void): unknown }): AbortSignal {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort(new CancelledError('the client cancelled the call')));
  return ac.signal;
}

/**
 * Adapts an async unary handler to grpc-js: the resolved value is sent, a thrown error is
 * mapped by `toGrpcStatus` and sent as the status.
 */
export function wrapUnary<Req, Res>(
  handler: (call: ServerUnaryCall<Req, Res>, ctx: HandlerContext) => Promise<Res> | Res,
  opts: WrapOptions = {},
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  const logger = opts.logger ?? nullLogger;
  return (call, callback) => {
    const ctx: HandlerContext = { signal: callSignal(call) };
    let result: Promise<Res>;
    try {
      result = Promise.resolve(handler(call, ctx));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (value) => callback(null, value),
      (err: unknown) =>
        callback(toGrpcStatus(err, { onInternal: internalLogger(logger, call.getPath()) })),
    );
  };
}

/**
 * Writes one message to a server stream, waiting for the transport to drain when it
 * applies back-pressure. Rejects with CancelledError if the call is cancelled meanwhile.
 */
export function writeMessage<Res>(
  call: ServerWritableStream<unknown, Res>,
  msg: Res,
): Promise<void> {
  if (call.cancelled) return Promise.reject(new CancelledError('the client cancelled the call'));
  if (call.write(msg)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      call.off('cancelled', onCancel);
      resolve();
    };
    const onCancel = (): void => {
      call.off('drain', onDrain);
      reject(new CancelledError('the client cancelled the call'));
    };
    call.once('drain', onDrain);
    call.once('cancelled', onCancel);
  });
}

/**
 * Adapts an async server-streaming handler: the handler writes (ideally with `writeMessage`);
 * when it resolves the stream ends with OK, when it throws the mapped status is emitted.
 */
export function wrapServerStream<Req, Res>(
  handler: (call: ServerWritableStream<Req, Res>, ctx: HandlerContext) => Promise<void> | void,
  opts: WrapOptions = {},
): (call: ServerWritableStream<Req, Res>) => void {
  const logger = opts.logger ?? nullLogger;
  return (call) => {
    const ctx: HandlerContext = { signal: callSignal(call) };
    let result: Promise<void>;
    try {
      result = Promise.resolve(handler(call, ctx));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => {
        if (!call.cancelled && !call.writableEnded) call.end();
      },
      (err: unknown) => {
        if (call.cancelled || call.writableEnded) return;
        // grpc-js turns an 'error' event on a server stream into the final status.
        call.emit(
          'error',
          toGrpcStatus(err, { onInternal: internalLogger(logger, call.getPath()) }),
        );
      },
    );
  };
}
