import * as grpc from '@grpc/grpc-js';
import { type NatsServerHandle, startNatsServer, waitFor } from '@metaprune/testkit';
import { type JetStreamClient, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  consumeSpan,
  ensureDurableConsumer,
  ensureWorkQueueStream,
  type GrpcServerHandle,
  grpcClientOptions,
  InvalidArgumentError,
  initTelemetry,
  publishSpan,
  publishWithMsgId,
  publishWithMsgIdTraced,
  SPAN_NAMES,
  startGrpcServer,
  type Telemetry,
  tracedClientOptions,
  tracedServerStream,
  tracedUnary,
  traceHandler,
  withSpan,
  wrapUnary,
  writeMessage,
} from '../src/index.js';
import {
  jsonService,
  parentId,
  serverStream,
  spanByName,
  spanId,
  spanOfKind,
  traceId,
  unary,
} from './telemetry-helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

let telemetry: Telemetry;
let spans: InMemorySpanExporter;

beforeAll(() => {
  telemetry = initTelemetry({ serviceName: 'propagation-test', env: {}, exporter: 'memory' });
  spans = telemetry.memoryExporter!;
});
afterAll(async () => {
  await telemetry.shutdown();
});
afterEach(() => spans.reset());

interface Msg {
  text?: string;
  fail?: 'invalid' | 'internal';
  n?: number;
}

describe('gRPC propagation (client interceptor + server span)', () => {
  const def = jsonService('metaprune.test.Echo', ['Echo', 'CountStream', 'Plain']);
  let srv: GrpcServerHandle;
  let client: grpc.Client;
  let serverSawTraceparent: string | undefined;

  beforeAll(async () => {
    srv = await startGrpcServer({
      services: [
        {
          definition: def,
          implementation: {
            Echo: tracedUnary<Msg, Msg>(async (call) => {
              serverSawTraceparent = call.metadata.get('traceparent')[0] as string | undefined;
              if (call.request.fail === 'invalid') throw new InvalidArgumentError('text', 'bad');
              if (call.request.fail === 'internal') throw new Error('boom: secret detail');
              return withSpan('echo.inner', async () => ({ text: call.request.text }), {
                'test.len': call.request.text?.length ?? 0,
              });
            }),
            CountStream: tracedServerStream<Msg, Msg>(async (call) => {
              for (let i = 0; i < (call.request.n ?? 0); i++) {
                await withSpan('count.item', () => writeMessage(call, { n: i }));
              }
            }),
            Plain: wrapUnary<Msg, Msg>(
              traceHandler(async (call) => ({ text: call.request.text }), {
                spanName: 'custom server span',
              }),
            ),
          },
        },
      ],
    });
    const Client = grpc.makeGenericClientConstructor(def, 'Echo');
    client = new Client(
      srv.address,
      grpc.credentials.createInsecure(),
      tracedClientOptions(grpcClientOptions()),
    );
  });
  afterAll(async () => {
    client?.close();
    await srv?.shutdown(500);
  });

  it('a unary call makes a CLIENT and a SERVER span in the same trace, server child of client', async () => {
    const res = await withSpan('caller', () => unary<Msg>(client, 'Echo', { text: 'hi' }));
    expect(res).toEqual({ text: 'hi' });
    await waitFor(() => spans.getFinishedSpans().length === 4);

    const caller = spanByName(spans, 'caller');
    const cli = spanOfKind(spans, 'metaprune.test.Echo/Echo', SpanKind.CLIENT);
    const server = spanOfKind(spans, 'metaprune.test.Echo/Echo', SpanKind.SERVER);
    const inner = spanByName(spans, 'echo.inner');

    for (const s of [cli, server, inner]) expect(traceId(s)).toBe(traceId(caller));
    expect(parentId(caller)).toBeUndefined();
    expect(parentId(cli)).toBe(spanId(caller));
    expect(parentId(server)).toBe(spanId(cli));
    expect(parentId(inner)).toBe(spanId(server));
    expect(serverSawTraceparent).toBe(`00-${traceId(cli)}-${spanId(cli)}-01`);

    expect(cli.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'metaprune.test.Echo',
      'rpc.method': 'Echo',
      'rpc.grpc.status_code': 0,
    });
    expect(server.attributes).toMatchObject({ 'rpc.grpc.status_code': 0, 'rpc.method': 'Echo' });
    expect(inner.attributes['test.len']).toBe(2);
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
    expect(server.resource.attributes['service.name']).toBe('propagation-test');
  });

  it('records status codes: caller errors on the client span, server faults on both', async () => {
    const invalid = (await unary(client, 'Echo', { fail: 'invalid' }).catch(
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(invalid.code).toBe(grpc.status.INVALID_ARGUMENT);
    await waitFor(() => spans.getFinishedSpans().length === 2);
    let cli = spanOfKind(spans, 'metaprune.test.Echo/Echo', SpanKind.CLIENT);
    let server = spanOfKind(spans, 'metaprune.test.Echo/Echo', SpanKind.SERVER);
    expect(traceId(server)).toBe(traceId(cli));
    expect(cli.attributes['rpc.grpc.status_code']).toBe(grpc.status.INVALID_ARGUMENT);
    expect(cli.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['rpc.grpc.status_code']).toBe(grpc.status.INVALID_ARGUMENT);
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
    expect(server.events.map((e) => e.name)).toEqual(['exception']);

    spans.reset();
    const internal = (await unary(client, 'Echo', { fail: 'internal' }).catch(
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(internal.code).toBe(grpc.status.INTERNAL);
    await waitFor(() => spans.getFinishedSpans().length === 2);
    cli = spanOfKind(spans, 'metaprune.test.Echo/Echo', SpanKind.CLIENT);
    server = spanOfKind(spans, 'metaprune.test.Echo/Echo', SpanKind.SERVER);
    expect(server.attributes['rpc.grpc.status_code']).toBe(grpc.status.INTERNAL);
    expect(server.status).toMatchObject({
      code: SpanStatusCode.ERROR,
      message: 'boom: secret detail',
    });
    expect(cli.status.code).toBe(SpanStatusCode.ERROR);
    // the exception (with its message) stays in the server's trace, not in the reply
    expect(server.events[0]?.attributes?.['exception.message']).toBe('boom: secret detail');
    expect(internal.details).toMatch(/^internal error \(ref [0-9a-f]+\)$/);
  });

  it('a server stream: the server span covers every write and ends with the stream', async () => {
    const out = await serverStream<Msg>(client, 'CountStream', { n: 3 });
    expect(out).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    await waitFor(() => spans.getFinishedSpans().length === 5);
    const cli = spanOfKind(spans, 'metaprune.test.Echo/CountStream', SpanKind.CLIENT);
    const server = spanOfKind(spans, 'metaprune.test.Echo/CountStream', SpanKind.SERVER);
    const items = spans.getFinishedSpans().filter((s) => s.name === 'count.item');
    expect(items).toHaveLength(3);
    expect(parentId(cli)).toBeUndefined();
    expect(parentId(server)).toBe(spanId(cli));
    for (const item of items) {
      expect(parentId(item)).toBe(spanId(server));
      expect(traceId(item)).toBe(traceId(cli));
    }
    expect(cli.attributes['rpc.grpc.status_code']).toBe(0);
  });

  it('traceHandler inside wrapUnary takes a custom span name', async () => {
    expect(await unary(client, 'Plain', { text: 'x' })).toEqual({ text: 'x' });
    await waitFor(() => spans.getFinishedSpans().length === 2);
    const server = spanByName(spans, 'custom server span');
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(parentId(server)).toBe(
      spanId(spanOfKind(spans, 'metaprune.test.Echo/Plain', SpanKind.CLIENT)),
    );
  });
});

describe('NATS JetStream propagation (headers)', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let js: JetStreamClient;

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ servers: server.url, name: 'telemetry-test' });
    const jsm = await jetstreamManager(nc);
    await ensureWorkQueueStream(jsm, {
      name: 'TEL',
      subjects: ['tel.>'],
      duplicateWindowMs: 60_000,
    });
    for (const durable of ['tel-a', 'tel-b', 'tel-c']) {
      await ensureDurableConsumer(jsm, 'TEL', {
        durable,
        filterSubject: `tel.${durable}`,
        ackWaitMs: 30_000,
        maxDeliver: 3,
      });
    }
    js = jetstream(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const next = async (durable: string) => {
    const consumer = await js.consumers.get('TEL', durable);
    const msg = await consumer.next({ expires: 5_000 });
    if (!msg) throw new Error(`no message for ${durable}`);
    return msg;
  };

  it('a consumed message continues the publisher trace (parent = publisher span)', async () => {
    const ack = await withSpan('producer', () =>
      publishWithMsgIdTraced(js, 'tel.tel-a', enc('job-1'), 'job-1'),
    );
    expect(ack.duplicate).toBe(false);
    // the consumer runs outside the producer's async context: only the headers carry it
    expect(trace.getActiveSpan()).toBeUndefined();
    const msg = await next('tel-a');
    expect(msg.headers?.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const result = await consumeSpan(msg, undefined, async () => {
      const out = await withSpan('work', async () => dec(msg.data).toUpperCase());
      msg.ack();
      return out;
    });
    expect(result).toBe('JOB-1');
    await waitFor(() => spans.getFinishedSpans().length === 4);

    const producer = spanByName(spans, 'producer');
    const publish = spanByName(spans, 'publish tel.tel-a');
    const process = spanByName(spans, 'process tel.tel-a');
    const work = spanByName(spans, 'work');
    for (const s of [publish, process, work]) expect(traceId(s)).toBe(traceId(producer));
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(parentId(publish)).toBe(spanId(producer));
    expect(parentId(process)).toBe(spanId(publish));
    expect(parentId(work)).toBe(spanId(process));
    expect(publish.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.destination.name': 'tel.tel-a',
      'messaging.message.id': 'job-1',
      'messaging.nats.stream': 'TEL',
      'messaging.nats.duplicate': false,
    });
    expect(process.attributes).toMatchObject({
      'messaging.nats.stream': 'TEL',
      'messaging.consumer.group.name': 'tel-a',
      'messaging.nats.delivery_count': 1,
      'messaging.nats.redelivered': false,
    });

    // a duplicate publish (same msg id) is still deduplicated by the server
    const dup = await publishWithMsgIdTraced(js, 'tel.tel-a', enc('job-1'), 'job-1');
    expect(dup.duplicate).toBe(true);
  });

  it("relation 'link' starts a new trace linked to the publisher span; errors are recorded", async () => {
    await withSpan('producer', () =>
      publishSpan('tel.tel-b', (headers) =>
        publishWithMsgId(js, 'tel.tel-b', enc('x'), 'job-b', { headers }),
      ),
    );
    const msg = await next('tel-b');
    const err = await consumeSpan(
      msg,
      'evaluate job',
      () => {
        msg.nak();
        throw new Error('evaluation crashed');
      },
      { relation: 'link' },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('evaluation crashed');
    await waitFor(() => spans.getFinishedSpans().length === 3);
    const publish = spanByName(spans, 'publish tel.tel-b');
    const consume = spanByName(spans, 'evaluate job');
    expect(traceId(consume)).not.toBe(traceId(publish));
    expect(parentId(consume)).toBeUndefined();
    expect(consume.links.map((l) => l.context.spanId)).toEqual([spanId(publish)]);
    expect(consume.status).toMatchObject({ code: SpanStatusCode.ERROR });
    expect(consume.events[0]?.attributes?.['exception.message']).toBe('evaluation crashed');
  });

  it('a message without trace headers gets a root consumer span', async () => {
    await publishWithMsgId(js, 'tel.tel-c', enc('plain'), 'job-c');
    const msg = await next('tel-c');
    await consumeSpan(msg, undefined, () => msg.ack());
    await waitFor(() => spans.getFinishedSpans().length === 1);
    expect(parentId(spanByName(spans, 'process tel.tel-c'))).toBeUndefined();
  });
});

describe('one trace across gRPC → NATS → gRPC (controller → queue → evaluator → weight-generator)', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let weightgen: GrpcServerHandle;
  let controller: GrpcServerHandle;
  const clients: grpc.Client[] = [];

  afterAll(async () => {
    for (const c of clients) c.close();
    await controller?.shutdown(500);
    await weightgen?.shutdown(500);
    await nc?.close();
    await server?.stop();
  });

  it('every span of the search shares one trace id, with the right parents', async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ servers: server.url, name: 'three-hops' });
    const jsm = await jetstreamManager(nc);
    await ensureWorkQueueStream(jsm, {
      name: 'JOBS',
      subjects: ['jobs.>'],
      duplicateWindowMs: 60_000,
    });
    await ensureDurableConsumer(jsm, 'JOBS', {
      durable: 'evaluators',
      ackWaitMs: 30_000,
      maxDeliver: 3,
    });
    const js = jetstream(nc);

    // weight-generator: server-streaming GenerateWeights
    const wgDef = jsonService('metaprune.test.WeightGen', ['GenerateStream']);
    weightgen = await startGrpcServer({
      services: [
        {
          definition: wgDef,
          implementation: {
            GenerateStream: tracedServerStream<{ encoding: number[] }, { layer: number }>(
              async (call) => {
                const layers = await withSpan(SPAN_NAMES.generateWeights, async () =>
                  call.request.encoding.map((_, i) => i),
                );
                for (const layer of layers) await writeMessage(call, { layer });
              },
            ),
          },
        },
      ],
    });
    const WeightGenClient = grpc.makeGenericClientConstructor(wgDef, 'WeightGen');
    const wgClient = new WeightGenClient(
      weightgen.address,
      grpc.credentials.createInsecure(),
      tracedClientOptions(),
    );
    clients.push(wgClient);

    // evaluator: a consumer loop started before any request, in its own (root) context
    const evaluated = new Promise<number>((resolve, reject) => {
      void (async () => {
        const consumer = await js.consumers.get('JOBS', 'evaluators');
        const msg = await consumer.next({ expires: 10_000 });
        if (!msg) throw new Error('no job delivered');
        const layers = await consumeSpan(msg, undefined, () =>
          withSpan(SPAN_NAMES.evaluate, async () => {
            const weights = await withSpan(SPAN_NAMES.bnRecalibration, () =>
              serverStream<{ layer: number }>(wgClient, 'GenerateStream', {
                encoding: JSON.parse(dec(msg.data)) as number[],
              }),
            );
            await withSpan(SPAN_NAMES.validation, async () => weights.length);
            return weights.length;
          }),
        );
        msg.ack();
        resolve(layers);
      })().catch(reject);
    });

    // controller: StartSearch enqueues one evaluation job
    const ctlDef = jsonService('metaprune.test.Controller', ['StartSearch']);
    controller = await startGrpcServer({
      services: [
        {
          definition: ctlDef,
          implementation: {
            StartSearch: tracedUnary<{ encoding: number[] }, { queued: boolean }>(async (call) => {
              const ack = await publishWithMsgIdTraced(
                js,
                'jobs.search-1',
                enc(JSON.stringify(call.request.encoding)),
                'search-1/cand-0',
                { spanName: 'publish jobs.{search}' },
              );
              return { queued: !ack.duplicate };
            }),
          },
        },
      ],
    });
    const ControllerClient = grpc.makeGenericClientConstructor(ctlDef, 'Controller');
    const ctlClient = new ControllerClient(
      controller.address,
      grpc.credentials.createInsecure(),
      tracedClientOptions(),
    );
    clients.push(ctlClient);

    // the CLI
    const res = await withSpan('cli search', () =>
      unary<{ queued: boolean }>(ctlClient, 'StartSearch', { encoding: [1, 2, 3, 4] }),
    );
    expect(res).toEqual({ queued: true });
    expect(await evaluated).toBe(4);

    const expected = [
      'cli search',
      'metaprune.test.Controller/StartSearch', // client
      'metaprune.test.Controller/StartSearch', // server
      'publish jobs.{search}',
      'process jobs.search-1',
      SPAN_NAMES.evaluate,
      SPAN_NAMES.bnRecalibration,
      'metaprune.test.WeightGen/GenerateStream', // client
      'metaprune.test.WeightGen/GenerateStream', // server
      SPAN_NAMES.generateWeights,
      SPAN_NAMES.validation,
    ];
    await waitFor(() => spans.getFinishedSpans().length === expected.length);
    const all = spans.getFinishedSpans();
    expect(all.map((s) => s.name).sort()).toEqual([...expected].sort());
    expect(new Set(all.map(traceId)).size).toBe(1);

    const cli = spanByName(spans, 'cli search');
    const ctlClientSpan = spanOfKind(
      spans,
      'metaprune.test.Controller/StartSearch',
      SpanKind.CLIENT,
    );
    const ctlServer = spanOfKind(spans, 'metaprune.test.Controller/StartSearch', SpanKind.SERVER);
    const publish = spanByName(spans, 'publish jobs.{search}');
    const process = spanByName(spans, 'process jobs.search-1');
    const evaluate = spanByName(spans, SPAN_NAMES.evaluate);
    const bn = spanByName(spans, SPAN_NAMES.bnRecalibration);
    const wgClientSpan = spanOfKind(
      spans,
      'metaprune.test.WeightGen/GenerateStream',
      SpanKind.CLIENT,
    );
    const wgServer = spanOfKind(spans, 'metaprune.test.WeightGen/GenerateStream', SpanKind.SERVER);
    const generate = spanByName(spans, SPAN_NAMES.generateWeights);
    const validation = spanByName(spans, SPAN_NAMES.validation);

    const chain = [
      cli,
      ctlClientSpan,
      ctlServer,
      publish,
      process,
      evaluate,
      bn,
      wgClientSpan,
      wgServer,
      generate,
    ];
    for (let i = 1; i < chain.length; i++) {
      expect(parentId(chain[i]!), chain[i]!.name).toBe(spanId(chain[i - 1]!));
    }
    expect(parentId(validation)).toBe(spanId(evaluate));
    expect(parentId(cli)).toBeUndefined();
  });
});
