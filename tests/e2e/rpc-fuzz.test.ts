/**
 * Property-based fuzzing of every public RPC (fast-check). The request messages are
 * generated from the .proto files themselves (protobufjs reflection): every field of every
 * request, nested messages, repeated fields, unknown enum numbers, NaN / ±Infinity / -0,
 * huge and negative integers, empty / long / non-ASCII strings, path traversal. Each call
 * goes over real gRPC to the real servers (weight generator, controller, latency profiler,
 * a real nats-server behind them) as raw bytes.
 *
 * Property: the server answers (no crash, still SERVING afterwards) with a documented
 * status only — never UNKNOWN, INTERNAL or DATA_LOSS — and an INVALID_ARGUMENT names the
 * offending field (the `metaprune-field` trailer). Oversized messages → RESOURCE_EXHAUSTED.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type ControllerHandle, startController } from '@metaprune/controller';
import { type LatencyProfilerHandle, startLatencyProfiler } from '@metaprune/latency-profiler';
import { common } from '@metaprune/proto';
import { checkHealth, FIELD_METADATA_KEY, nullLogger } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer } from '@metaprune/testkit';
import { startWeightGenerator, type WeightGeneratorHandle } from '@metaprune/weight-generator';
import {
  networkFromProto,
  type ResolvedPruningNet,
  StaticPruningNets,
  specToProto,
} from '@metaprune/wire';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PROTO_ROOT = resolve(import.meta.dirname, '../../proto');
const MAX_MESSAGE = 256 * 1024;
const RUNS = Number(process.env['METAPRUNE_FUZZ_RUNS'] ?? 40);

/** Codes a public RPC may answer with (docs/operations.md, "Validation"). */
const DOCUMENTED = new Set<number>([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.FAILED_PRECONDITION,
  // a stream that is still running when this test's deadline ends it
  grpc.status.DEADLINE_EXCEEDED,
]);

const PN_ID = 'pn-fuzz';
const PN: ResolvedPruningNet = {
  pruningnetId: PN_ID,
  version: 1,
  network: specToProto(
    networkFromProto(
      common.NetworkSpec.fromPartial({
        family: common.NetworkFamily.MOBILENET_V2,
        preset: common.NetworkPreset.SMALL,
        widthMultiplier: 0.25,
        inputSize: 32,
        inputChannels: 1,
        numClasses: 10,
      }),
    ).spec,
  ),
  geneCount: 0,
  data: { dataset: 'fashion-mnist', seed: 1, validationImages: 500 },
};
PN.geneCount = networkFromProto(PN.network).genes.length;

// --- request generators from the .proto reflection ---------------------------------------

const nasty = fc.constantFrom(
  '',
  ' ',
  '..',
  '../../../etc/passwd',
  '/etc/passwd',
  'a/../../b',
  './x',
  'x\u0000y',
  '%2e%2e/',
  'é🚀',
  'x'.repeat(300),
  'NaN',
  '-1',
  PN_ID,
  'fashion-mnist',
  'cifar10',
  'dir:../../x',
);
const stringArb = fc.oneof(
  fc.string({ maxLength: 24 }),
  nasty,
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);
const doubleArb = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 1e308),
  fc.double({ min: -2, max: 2, noNaN: true }),
  fc.integer({ min: 0, max: 100 }),
);
const int32Arb = fc.oneof(
  fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }),
  fc.integer({ min: -3, max: 64 }),
  fc.constantFrom(0, 1, 2_147_483_647, -2_147_483_648),
);
const uint32Arb = fc.oneof(
  fc.integer({ min: 0, max: 4_294_967_295 }),
  fc.integer({ min: 0, max: 64 }),
);
const int64Arb = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 40),
);
const uint64Arb = fc.oneof(
  fc.integer({ min: 0, max: 1000 }),
  fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
);

function scalar(type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'double':
    case 'float':
      return doubleArb;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return int32Arb;
    case 'uint32':
    case 'fixed32':
      return uint32Arb;
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return int64Arb;
    case 'uint64':
    case 'fixed64':
      return uint64Arb;
    case 'bool':
      return fc.boolean();
    case 'string':
      return stringArb;
    case 'bytes':
      return fc.uint8Array({ maxLength: 32 });
    default:
      throw new Error(`no generator for ${type}`);
  }
}

function fieldArb(f: protobuf.Field, depth: number): fc.Arbitrary<unknown> | undefined {
  f.resolve();
  let a: fc.Arbitrary<unknown> | undefined;
  if (f.resolvedType instanceof protobuf.Enum) {
    const values = Object.values(f.resolvedType.values);
    a = fc.oneof(fc.constantFrom(...values), fc.integer({ min: -2, max: 40 }));
  } else if (f.resolvedType instanceof protobuf.Type) {
    if (depth <= 0) return undefined;
    a = messageArb(f.resolvedType, depth - 1);
  } else if (f.name === 'pruningnetId') {
    a = fc.oneof(fc.constant(PN_ID), stringArb);
  } else {
    a = scalar(f.type);
  }
  if (f.repeated) {
    const max = f.resolvedType instanceof protobuf.Type ? 3 : 60;
    // lists near the network's gene count reach the deeper checks of encodings
    return fc.oneof(
      fc.array(a, { maxLength: max }),
      ...(f.resolvedType === null && f.type.includes('int')
        ? [
            fc.array(fc.integer({ min: -1, max: 31 }), {
              minLength: PN.geneCount,
              maxLength: PN.geneCount,
            }),
          ]
        : []),
    );
  }
  return a;
}

function messageArb(type: protobuf.Type, depth = 4): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fieldsArray) {
    const a = fieldArb(f, depth);
    if (a) fields[f.name] = a;
  }
  return fc.record(fields, { requiredKeys: [] });
}

// --- raw calls --------------------------------------------------------------------------

interface Outcome {
  code: number;
  details: string;
  field: string | undefined;
}

const identity = (b: Buffer): Buffer => b;

function rawCall(
  client: grpc.Client,
  path: string,
  streaming: boolean,
  body: Uint8Array,
): Promise<Outcome> {
  const deadline = new Date(Date.now() + (streaming ? 1500 : 10_000));
  const done = (err: grpc.ServiceError | null): Outcome => ({
    code: err?.code ?? grpc.status.OK,
    details: err?.details ?? '',
    field: err?.metadata?.get(FIELD_METADATA_KEY)[0]?.toString(),
  });
  return new Promise((ok) => {
    if (!streaming) {
      client.makeUnaryRequest(
        path,
        identity,
        identity,
        Buffer.from(body),
        new grpc.Metadata(),
        { deadline },
        (err) => ok(done(err)),
      );
      return;
    }
    const call = client.makeServerStreamRequest(
      path,
      identity,
      identity,
      Buffer.from(body),
      new grpc.Metadata(),
      { deadline },
    );
    call.on('data', () => {});
    call.on('error', (err: grpc.ServiceError) => ok(done(err)));
    call.on('end', () => ok(done(null)));
  });
}

// --- the servers ------------------------------------------------------------------------

describe('fuzzing every public RPC (fast-check, real servers)', () => {
  let home: string;
  let nats: NatsServerHandle;
  let wg: WeightGeneratorHandle;
  let ctl: ControllerHandle;
  let lp: LatencyProfilerHandle;
  let root: protobuf.Root;
  const clients: grpc.Client[] = [];

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'metaprune-fuzz-'));
    nats = await startNatsServer({ jetstream: true });
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) =>
      target.startsWith('google/') ? target : join(PROTO_ROOT, target);
    await root.load(
      [
        'metaprune/weightgen/v1/weightgen.proto',
        'metaprune/controller/v1/search.proto',
        'metaprune/latency/v1/latency.proto',
      ],
      { keepCase: false },
    );
    root.resolveAll();
    wg = await startWeightGenerator({
      port: 0,
      natsUrl: [nats.url],
      checkpointRoot: join(home, 'checkpoints'),
      exportRoot: join(home, 'exports'),
      dataRoot: join(home, 'data'),
      maxMessageBytes: MAX_MESSAGE,
      logger: nullLogger,
      // a training job that never trains: StartTraining is about validation here
      trainer: {
        train: (_req, hooks) =>
          new Promise((ok) =>
            hooks.signal.addEventListener('abort', () => ok({ status: 'stopped' }), {
              once: true,
            }),
          ),
      },
    });
    ctl = await startController({
      natsUrl: nats.url,
      weightGenerator: wg.address,
      pruningnets: new StaticPruningNets([PN]),
      maxMessageBytes: MAX_MESSAGE,
      maxConcurrentSearches: 4,
      logger: nullLogger,
    });
    lp = await startLatencyProfiler({
      port: 0,
      natsUrl: [nats.url],
      maxMessageBytes: MAX_MESSAGE,
      logger: nullLogger,
    });
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await ctl?.close(2000);
    await lp?.shutdown();
    await wg?.shutdown();
    await nats?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  const services = () =>
    [
      ['metaprune.weightgen.v1.WeightGeneratorService', wg.address],
      ['metaprune.controller.v1.SearchService', ctl.address],
      ['metaprune.latency.v1.LatencyProfilerService', lp.address],
    ] as const;

  it('covers every method of the three public services', () => {
    const methods = services().flatMap(([name]) => Object.keys(root.lookupService(name).methods));
    expect(methods).toHaveLength(19);
  });

  for (const [serviceName, label] of [
    ['metaprune.weightgen.v1.WeightGeneratorService', 'weight generator'],
    ['metaprune.controller.v1.SearchService', 'controller'],
    ['metaprune.latency.v1.LatencyProfilerService', 'latency profiler'],
  ] as const) {
    it(`${label}: random requests get documented codes only, INVALID_ARGUMENT names a field`, async () => {
      const address = services().find(([n]) => n === serviceName)![1];
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      clients.push(client);
      const service = root.lookupService(serviceName);
      const seen = new Map<string, Set<number>>();
      for (const method of service.methodsArray) {
        method.resolve();
        const reqType = method.resolvedRequestType!;
        const path = `/${serviceName}/${method.name}`;
        const codes = new Set<number>();
        seen.set(method.name, codes);
        await fc.assert(
          fc.asyncProperty(messageArb(reqType), async (obj) => {
            const body = reqType.encode(reqType.fromObject(obj)).finish();
            const out = await rawCall(client, path, method.responseStream === true, body);
            codes.add(out.code);
            const what = `${method.name} → ${grpc.status[out.code]}: ${out.details}`;
            expect(DOCUMENTED.has(out.code), what).toBe(true);
            if (out.code === grpc.status.DEADLINE_EXCEEDED) {
              expect(method.responseStream, what).toBe(true);
            }
            if (out.code === grpc.status.INVALID_ARGUMENT) {
              expect(out.field, `${what} (no field named)`).toBeTruthy();
            }
          }),
          { numRuns: RUNS },
        );
      }
      if (process.env['FUZZ_DEBUG'])
        console.log(
          serviceName,
          [...seen]
            .map(([m, c]) => `${m}:${[...c].map((x) => grpc.status[x]).join('/')}`)
            .join('  '),
        );
      // it is still up and serving
      expect(await checkHealth(address)).toBe('SERVING');
      // and the fuzzing reached past the first check of most methods
      const beyondInvalid = [...seen.values()].filter((c) =>
        [...c].some((x) => x !== grpc.status.INVALID_ARGUMENT),
      );
      expect(beyondInvalid.length).toBeGreaterThan(0);
    }, 300_000);
  }

  it('a request over the service maximum message size → RESOURCE_EXHAUSTED', async () => {
    for (const [serviceName, address] of services()) {
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      clients.push(client);
      const method = root.lookupService(serviceName).methodsArray[0]!;
      method.resolve();
      const reqType = method.resolvedRequestType!;
      const stringField = reqType.fieldsArray.find((f) => f.type === 'string' && !f.repeated)!;
      const body = reqType
        .encode(reqType.fromObject({ [stringField.name]: 'x'.repeat(MAX_MESSAGE + 1024) }))
        .finish();
      const out = await rawCall(
        client,
        `/${serviceName}/${method.name}`,
        method.responseStream === true,
        body,
      );
      expect(out.code, `${serviceName}: ${out.details}`).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(await checkHealth(address)).toBe('SERVING');
    }
  });
});
