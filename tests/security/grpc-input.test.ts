/**
 * Integers beyond 2^53 - 1 (issue 15): `max_macs = 2^64 - 1` made the generated decoder
 * throw, which grpc-js answers with INTERNAL. Every service's server (startGrpcServer)
 * now answers INVALID_ARGUMENT naming the field's path before any handler runs. Real
 * server, real client, the controller's real service definition.
 */
import * as grpc from '@grpc/grpc-js';
import { controller } from '@metaprune/proto';
import { FIELD_METADATA_KEY, type GrpcServerHandle, startGrpcServer } from '@metaprune/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Protobuf varint bytes of `v`. */
function varint(v: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

/** StartSearchRequest { pruningnet_id: "pn", budgets: [{ max_macs: v }] } by hand. */
function startSearchWith(maxMacs: bigint): Buffer {
  const budget = [0x10, ...varint(maxMacs)]; // field 2, varint
  return Buffer.from([0x0a, 2, 0x70, 0x6e, 0x22, budget.length, ...budget]); // fields 1, 4
}

let server: GrpcServerHandle;
let calls = 0;

beforeAll(async () => {
  server = await startGrpcServer({
    services: [
      {
        definition: controller.SearchServiceService,
        implementation: {
          startSearch: (
            call: grpc.ServerUnaryCall<controller.StartSearchRequest, unknown>,
            cb: grpc.sendUnaryData<controller.StartSearchResponse>,
          ) => {
            calls++;
            cb(null, { searchId: `s-${call.request.budgets[0]?.maxMacs}` });
          },
        },
      },
    ],
  });
});
afterAll(() => server?.shutdown());

function call(bytes: Buffer): Promise<{ code: number; field?: string; id?: string }> {
  const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  return new Promise((ok) => {
    client.makeUnaryRequest(
      '/metaprune.controller.v1.SearchService/StartSearch',
      (b: Buffer) => b,
      (b: Buffer) => controller.StartSearchResponse.decode(b),
      bytes,
      (err, res) => {
        client.close();
        if (err) {
          const field = err.metadata?.get(FIELD_METADATA_KEY)[0]?.toString();
          ok({ code: err.code, ...(field ? { field } : {}) });
        } else ok({ code: 0, id: res!.searchId });
      },
    );
  });
}

describe('out-of-range 64-bit integers', () => {
  it('2^64 - 1 and 2^53 are INVALID_ARGUMENT naming the field path; 2^53 - 1 reaches the handler', async () => {
    expect(await call(startSearchWith((1n << 64n) - 1n))).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      field: 'field #4.2',
    });
    expect((await call(startSearchWith(1n << 53n))).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(calls).toBe(0);
    const ok = await call(startSearchWith(BigInt(Number.MAX_SAFE_INTEGER)));
    expect(ok).toEqual({ code: 0, id: `s-${Number.MAX_SAFE_INTEGER}` });
    expect(calls).toBe(1);
  });
});
