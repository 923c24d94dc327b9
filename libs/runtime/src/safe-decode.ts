/**
 * Requests whose 64-bit integers do not fit a JavaScript number (above 2^53 - 1, e.g.
 * `max_macs = 2^64 - 1`): the generated decoders throw, and grpc-js answers any decoder
 * error with INTERNAL. The server's deserializers are wrapped so such a request becomes an
 * INVALID_ARGUMENT naming the field (by its protobuf field numbers: the generated code has
 * no descriptors to name it), before any handler runs.
 */
import type * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError, toGrpcStatus } from './errors.js';

const UNDECODABLE = Symbol('metaprune.undecodable');
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Field-number path of the first varint above 2^53 - 1 ("2.1" = field 1 inside field 2). */
export function oversizeVarintPath(buf: Uint8Array, depth = 0): string | undefined {
  let i = 0;
  const varint = (): bigint | undefined => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= buf.length) return undefined;
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    return undefined;
  };
  while (i < buf.length) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const field = Number(tag >> 3n);
    switch (Number(tag & 7n)) {
      case 0: {
        const v = varint();
        if (v === undefined) return undefined;
        // unsigned and signed (two's complement) fields look alike on the wire: the first
        // varint beyond 2^53 - 1 is taken to be the one the decoder refused
        if (v > MAX_SAFE) return String(field);
        break;
      }
      case 1:
        i += 8;
        break;
      case 5:
        i += 4;
        break;
      case 2: {
        const len = varint();
        if (len === undefined || i + Number(len) > buf.length) return undefined;
        const inner = buf.subarray(i, i + Number(len));
        i += Number(len);
        if (depth < 8) {
          const sub = oversizeVarintPath(inner, depth + 1);
          if (sub !== undefined) return `${field}.${sub}`;
        }
        break;
      }
      default:
        return undefined;
    }
  }
  return undefined;
}

function wrapDeserialize(deserialize: (b: Buffer) => unknown): (b: Buffer) => unknown {
  return (buf: Buffer) => {
    try {
      return deserialize(buf);
    } catch (err) {
      if (!/MAX_SAFE_INTEGER|MIN_SAFE_INTEGER/.test((err as Error).message ?? '')) throw err;
      const path = oversizeVarintPath(buf);
      return {
        [UNDECODABLE]: new InvalidArgumentError(
          path ? `field #${path}` : 'request',
          `an integer is outside the range this API accepts (at most 2^53 - 1 = ${Number.MAX_SAFE_INTEGER})`,
          { cause: err },
        ),
      };
    }
  };
}

type AnyHandler = (call: never, callback?: never) => void;

/**
 * The service with deserializers that turn out-of-range integers into INVALID_ARGUMENT
 * (answered here) instead of a decoder exception (INTERNAL from grpc-js).
 */
export function withSafeDecoding(
  definition: grpc.ServiceDefinition,
  implementation: grpc.UntypedServiceImplementation,
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const impl: Record<string, AnyHandler> = {};
  for (const [name, m] of Object.entries(definition)) {
    def[name] = { ...m, requestDeserialize: wrapDeserialize(m.requestDeserialize) };
    const handler = implementation[name] as AnyHandler | undefined;
    if (!handler) continue;
    impl[name] = ((
      call: { request?: Record<symbol, unknown>; emit?: unknown },
      callback?: unknown,
    ) => {
      const bad = call.request?.[UNDECODABLE] as InvalidArgumentError | undefined;
      if (!bad) return (handler as (c: unknown, cb?: unknown) => void)(call, callback);
      const st = toGrpcStatus(bad);
      if (typeof callback === 'function') {
        (callback as (e: unknown) => void)(st);
      } else {
        (call as unknown as grpc.ServerWritableStream<unknown, unknown>).emit('error', st);
      }
    }) as AnyHandler;
  }
  // methods without an implementation stay unimplemented, as before
  for (const [name, h] of Object.entries(implementation)) impl[name] ??= h as AnyHandler;
  return {
    definition: def as grpc.ServiceDefinition,
    implementation: impl as unknown as grpc.UntypedServiceImplementation,
  };
}
