import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AlreadyExistsError,
  CancelledError,
  createLogger,
  DeadlineExceededError,
  ERROR_REF_METADATA_KEY,
  FailedPreconditionError,
  FIELD_METADATA_KEY,
  fromGrpcError,
  type GrpcServerHandle,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  requireNumber,
  startGrpcServer,
  toGrpcStatus,
  UnauthenticatedError,
  UnavailableError,
  wrapServerStream,
  wrapUnary,
  writeMessage,
} from '../src/index.js';
import { callCount, callEcho, type EchoRequest, echoClient, echoDefinition } from './helpers.js';

describe('toGrpcStatus', () => {
  it('maps every typed error to its code and keeps the message', () => {
    const cases: [Error, status][] = [
      [
        new InvalidArgumentError('population', 'must be an integer in [2, 1000], got 1'),
        status.INVALID_ARGUMENT,
      ],
      [new NotFoundError('search s1 not found'), status.NOT_FOUND],
      [new AlreadyExistsError('exists'), status.ALREADY_EXISTS],
      [new FailedPreconditionError('not trained'), status.FAILED_PRECONDITION],
      [new UnauthenticatedError('missing token'), status.UNAUTHENTICATED],
      [new PermissionDeniedError('wrong token'), status.PERMISSION_DENIED],
      [new ResourceExhaustedError('too big'), status.RESOURCE_EXHAUSTED],
      [new UnavailableError('down'), status.UNAVAILABLE],
      [new CancelledError('cancelled'), status.CANCELLED],
      [new DeadlineExceededError('slow'), status.DEADLINE_EXCEEDED],
    ];
    for (const [err, code] of cases) {
      const s = toGrpcStatus(err);
      expect(s.code).toBe(code);
      expect(s.details).toBe(err.message);
    }
  });

  it('InvalidArgumentError names the field in the message and metadata, keeps the cause', () => {
    const cause = new RangeError('x');
    const err = new InvalidArgumentError('budgets[1].maxMacs', 'must be > 0, got -3', { cause });
    expect(err.message).toBe('invalid budgets[1].maxMacs: must be > 0, got -3');
    expect(err.field).toBe('budgets[1].maxMacs');
    expect(err.cause).toBe(cause);
    expect(err.name).toBe('InvalidArgumentError');
    expect(toGrpcStatus(err).metadata.get(FIELD_METADATA_KEY)).toEqual(['budgets[1].maxMacs']);
  });

  it('unknown errors become INTERNAL with a reference, never the message or stack', () => {
    const refs: string[] = [];
    const s = toGrpcStatus(new Error('secret path /etc/passwd'), {
      onInternal: (_e, ref) => refs.push(ref),
    });
    expect(s.code).toBe(status.INTERNAL);
    expect(s.details).not.toContain('secret');
    expect(s.details).not.toContain('at ');
    expect(s.details).toMatch(/^internal error \(ref [0-9a-f]{12}\)$/);
    expect(refs).toHaveLength(1);
    expect(s.metadata.get(ERROR_REF_METADATA_KEY)).toEqual([refs[0]]);
    expect(toGrpcStatus('a string').code).toBe(status.INTERNAL);
    expect(toGrpcStatus(undefined).code).toBe(status.INTERNAL);
    expect(toGrpcStatus(new InternalError('checkpoint store broken')).details).toMatch(
      /^checkpoint store broken \(ref /,
    );
  });

  it('AbortError becomes CANCELLED; downstream UNAVAILABLE passes on without details', () => {
    const ac = new AbortController();
    ac.abort();
    const abortErr = (() => {
      try {
        ac.signal.throwIfAborted();
      } catch (e) {
        return e;
      }
    })();
    expect(toGrpcStatus(abortErr).code).toBe(status.CANCELLED);
    const downstream = Object.assign(new Error('14 UNAVAILABLE: connect ECONNREFUSED 10.0.0.1'), {
      code: status.UNAVAILABLE,
      details: 'connect ECONNREFUSED 10.0.0.1',
      metadata: new Metadata(),
    });
    const s = toGrpcStatus(downstream);
    expect(s.code).toBe(status.UNAVAILABLE);
    expect(s.details).not.toContain('10.0.0.1');
  });

  it('requireNumber rejects NaN, infinities, non-integers and out-of-range values', () => {
    expect(requireNumber('n', 5, { min: 1, max: 10, integer: true })).toBe(5);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 2.5, 0, 11, '5', undefined]) {
      expect(() => requireNumber('n', bad, { min: 1, max: 10, integer: true })).toThrow(
        /invalid n: must be an integer in \[1, 10\], got/,
      );
    }
    expect(() => requireNumber('lr', -1, { min: 0 })).toThrow(
      'invalid lr: must be a finite number >= 0, got -1',
    );
  });
});

describe('wrapUnary / wrapServerStream over a real gRPC server', () => {
  let srv: GrpcServerHandle;
  const logged: string[] = [];
  const logger = createLogger({ service: 'test', level: 'error', write: (l) => logged.push(l) });
  const client = () => echoClient(srv.address);

  beforeAll(async () => {
    srv = await startGrpcServer({
      services: [
        {
          definition: echoDefinition,
          implementation: {
            Echo: wrapUnary<EchoRequest, unknown>(
              async (call) => {
                const { mode, text } = call.request;
                if (mode === 'invalid')
                  throw new InvalidArgumentError('text', 'must be 1..10 characters, got 0');
                if (mode === 'notfound') throw new NotFoundError(`no such thing ${text}`);
                if (mode === 'boom') throw new Error('database password is hunter2');
                if (mode === 'sync') throw new TypeError('sync throw in handler');
                return { text };
              },
              { logger },
            ),
            Count: wrapServerStream<EchoRequest, unknown>(
              async (call) => {
                const n = call.request.n ?? 0;
                for (let i = 0; i < n; i++) await writeMessage(call, { i });
                if (call.request.mode === 'invalid')
                  throw new InvalidArgumentError('n', 'must be <= 2');
                if (call.request.mode === 'boom') throw new Error('stack me');
              },
              { logger },
            ),
          },
        },
      ],
    });
  });
  afterAll(async () => {
    await srv.shutdown(1000);
  });

  it('returns the handler value', async () => {
    expect(await callEcho(client(), { text: 'hi' })).toEqual({ text: 'hi' });
  });

  it('InvalidArgumentError → INVALID_ARGUMENT with the message and field', async () => {
    const err = (await callEcho(client(), { mode: 'invalid' }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('invalid text: must be 1..10 characters, got 0');
    expect(err.metadata.get(FIELD_METADATA_KEY)).toEqual(['text']);
    const typed = fromGrpcError(err);
    expect(typed).toBeInstanceOf(InvalidArgumentError);
    expect((typed as InvalidArgumentError).field).toBe('text');
    expect(typed.message).toBe('invalid text: must be 1..10 characters, got 0');
  });

  it('NotFoundError → NOT_FOUND, and back to NotFoundError on the client', async () => {
    const err = (await callEcho(client(), { mode: 'notfound', text: 'x' }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.NOT_FOUND);
    expect(fromGrpcError(err)).toBeInstanceOf(NotFoundError);
  });

  it('an unexpected Error → INTERNAL without message or stack; logged with the ref', async () => {
    for (const mode of ['boom', 'sync']) {
      const err = (await callEcho(client(), { mode }).catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(status.INTERNAL);
      expect(err.details).toMatch(/^internal error \(ref [0-9a-f]+\)$/);
      expect(err.details).not.toMatch(/hunter2|sync throw|\.ts:/);
      const ref = err.metadata.get(ERROR_REF_METADATA_KEY)[0];
      const line = logged.find((l) => l.includes(String(ref)));
      expect(line).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ level: 'error', method: '/test.Echo/Echo' });
    }
    expect(logged.join('\n')).toContain('hunter2'); // the server log has the real error
  });

  it('server stream: messages then OK; or messages then the mapped status', async () => {
    const ok = await callCount(client(), { n: 3 });
    expect(ok.messages).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    expect(ok.error).toBeUndefined();

    const bad = await callCount(client(), { n: 2, mode: 'invalid' });
    expect(bad.messages).toEqual([{ i: 0 }, { i: 1 }]);
    expect(bad.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.error?.details).toBe('invalid n: must be <= 2');

    const boom = await callCount(client(), { n: 1, mode: 'boom' });
    expect(boom.error?.code).toBe(status.INTERNAL);
    expect(boom.error?.details).not.toContain('stack me');
  });
});
