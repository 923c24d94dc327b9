import * as grpc from '@grpc/grpc-js';
import { type NatsServerHandle, startNatsServer, waitFor } from '@metaprune/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { context, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { DataPointType, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  consumeSpan,
  createMetrics,
  ensureDurableConsumer,
  ensureWorkQueueStream,
  extractNatsContext,
  initTelemetry,
  injectNatsHeaders,
  jetStreamQueueLag,
  METRIC_NAMES,
  publishWithMsgIdTraced,
  resolveTelemetryConfig,
  startGrpcServer,
  tracedClientOptions,
  tracedUnary,
  traceLogFields,
  withSpan,
} from '../src/index.js';
import {
  jsonService,
  parentId,
  spanByName,
  spanId,
  startOtlpReceiver,
  unary,
} from './telemetry-helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('resolveTelemetryConfig (OTEL_* variables)', () => {
  const resolve = (env: Record<string, string>, exporter?: 'otlp' | 'memory' | 'none') =>
    resolveTelemetryConfig({ serviceName: 'evaluator', env, ...(exporter ? { exporter } : {}) });

  it('exports nothing when nothing is configured', () => {
    const cfg = resolve({});
    expect(cfg.traces.exporter).toBe('none');
    expect(cfg.metrics.exporter).toBe('none');
    expect(cfg.serviceName).toBe('evaluator');
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT turns on OTLP/HTTP protobuf for traces and metrics', () => {
    const cfg = resolve({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc, x-tenant = t1',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
      OTEL_METRIC_EXPORT_INTERVAL: '15000',
    });
    expect(cfg.traces.exporter).toBe('otlp');
    expect(cfg.traces.otlp).toEqual({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: { authorization: 'Bearer abc', 'x-tenant': 't1' },
      timeoutMs: 2500,
      compression: 'none',
    });
    expect(cfg.metrics.exporter).toBe('otlp');
    expect(cfg.metrics.otlp?.url).toBe('http://collector:4318/v1/metrics');
    expect(cfg.metrics.intervalMs).toBe(15_000);
    expect(cfg.metrics.timeoutMs).toBe(15_000);
  });

  it('signal-specific endpoints, protocols and exporters', () => {
    const cfg = resolve({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/api/v1/traces',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    });
    expect(cfg.traces.otlp?.url).toBe('https://traces.example/api/v1/traces');
    expect(cfg.traces.otlp?.protocol).toBe('http/json');
    expect(cfg.traces.otlp?.compression).toBe('gzip');
    expect(cfg.metrics.exporter).toBe('none');

    const tracesOff = resolve({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_TRACES_EXPORTER: 'none',
    });
    expect(tracesOff.traces.exporter).toBe('none');
    expect(tracesOff.metrics.exporter).toBe('otlp');

    const named = resolve({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_METRICS_EXPORTER: 'console' });
    expect(named.traces.otlp?.url).toBe('http://localhost:4318/v1/traces');
    expect(named.metrics.exporter).toBe('console');

    expect(resolve({ OTEL_TRACES_EXPORTER: 'zipkin' }).traces.exporter).toBe('none');
    expect(() =>
      resolve({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      }),
    ).toThrow(/not supported; use http\/protobuf/);
  });

  it('OTEL_SDK_DISABLED wins; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the service', () => {
    const off = resolve(
      { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' },
      'memory',
    );
    expect([off.traces.exporter, off.metrics.exporter]).toEqual(['none', 'none']);
    expect(resolve({}, 'memory').traces.exporter).toBe('memory');
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, 'none').traces.exporter).toBe(
      'none',
    );
    expect(resolve({}, 'otlp').metrics.otlp?.url).toBe('http://localhost:4318/v1/metrics');

    expect(resolve({ OTEL_SERVICE_NAME: 'eval-a' }).serviceName).toBe('eval-a');
    const withAttrs = resolve({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=eval-b,k8s.pod.name=p-1' });
    expect(withAttrs.serviceName).toBe('eval-b');
    expect(withAttrs.resourceAttributes['k8s.pod.name']).toBe('p-1');
    expect(
      resolve({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })
        .traces.sampler,
    ).toBe('parentbased_traceidratio:0.25');
  });
});

describe('withSpan (memory exporter)', () => {
  it('nests, records exceptions, supports sync and async functions and new roots', async () => {
    const t = initTelemetry({ serviceName: 'spans', env: {}, exporter: 'memory' });
    const spans = t.memoryExporter!;
    try {
      const fields: Array<ReturnType<typeof traceLogFields>> = [];
      const value = await withSpan('outer', async (outer) => {
        fields.push(traceLogFields());
        const sync = withSpan('sync child', () => 21 * 2, { 'metaprune.train.epoch': 3 });
        await new Promise((r) => setTimeout(r, 5));
        // context survives timers and awaits (AsyncLocalStorage)
        expect(trace.getActiveSpan()).toBe(outer);
        expect(() =>
          withSpan('sync failure', () => {
            throw new Error('sync boom');
          }),
        ).toThrow('sync boom');
        await expect(
          withSpan('async failure', async () => {
            await Promise.resolve();
            throw new TypeError('async boom');
          }),
        ).rejects.toThrow('async boom');
        withSpan('detached', () => undefined, undefined, { root: true });
        return sync;
      });
      expect(value).toBe(42);
      expect(trace.getActiveSpan()).toBeUndefined();

      const outer = spanByName(spans, 'outer');
      expect(fields[0]).toEqual({
        trace_id: outer.spanContext().traceId,
        span_id: spanId(outer),
      });
      const child = spanByName(spans, 'sync child');
      expect(parentId(child)).toBe(spanId(outer));
      expect(child.attributes['metaprune.train.epoch']).toBe(3);
      const syncFail = spanByName(spans, 'sync failure');
      expect(syncFail.status).toEqual({ code: SpanStatusCode.ERROR, message: 'sync boom' });
      const asyncFail = spanByName(spans, 'async failure');
      expect(asyncFail.status.code).toBe(SpanStatusCode.ERROR);
      expect(asyncFail.events[0]?.attributes?.['exception.type']).toBe('TypeError');
      expect(parentId(asyncFail)).toBe(spanId(outer));
      const detached = spanByName(spans, 'detached');
      expect(parentId(detached)).toBeUndefined();
      expect(detached.spanContext().traceId).not.toBe(outer.spanContext().traceId);
      expect(outer.resource.attributes['service.name']).toBe('spans');
      expect(traceLogFields()).toEqual({});
    } finally {
      await t.shutdown();
    }
    // shutdown unregisters the globals
    expect(withSpan('after shutdown', (s) => s.isRecording())).toBe(false);
  });
});

describe('with a real nats-server', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({ servers: server.url, name: 'telemetry-metrics' });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('no exporter configured: every helper is a pass-through, nothing is recorded, no errors', async () => {
    const t = initTelemetry({ serviceName: 'quiet', env: {} });
    expect(t.enabled).toBe(false);
    expect(t.memoryExporter).toBeUndefined();
    expect(await t.collectMetrics()).toEqual([]);

    // gRPC through the interceptor and a traced handler
    const def = jsonService('metaprune.test.Quiet', ['Echo']);
    let seenMetadataKeys: string[] = [];
    let serverSpanRecording: boolean | undefined;
    const srv = await startGrpcServer({
      services: [
        {
          definition: def,
          implementation: {
            Echo: tracedUnary<{ text: string }, { text: string }>((call) => {
              seenMetadataKeys = Object.keys(call.metadata.getMap());
              serverSpanRecording = trace.getActiveSpan()?.isRecording() ?? false;
              return { text: call.request.text };
            }),
          },
        },
      ],
    });
    const Client = grpc.makeGenericClientConstructor(def, 'Quiet');
    const client = new Client(
      srv.address,
      grpc.credentials.createInsecure(),
      tracedClientOptions(),
    );
    try {
      const res = await withSpan('ignored', () => unary(client, 'Echo', { text: 'q' }));
      expect(res).toEqual({ text: 'q' });
      expect(seenMetadataKeys).not.toContain('traceparent');
      expect(serverSpanRecording).toBe(false);
    } finally {
      client.close();
      await srv.shutdown(500);
    }

    // NATS publish and consume
    const jsm = await jetstreamManager(nc);
    await ensureWorkQueueStream(jsm, {
      name: 'QUIET',
      subjects: ['quiet.>'],
      duplicateWindowMs: 60_000,
    });
    await ensureDurableConsumer(jsm, 'QUIET', { durable: 'q', ackWaitMs: 30_000, maxDeliver: 3 });
    const js = jetstream(nc);
    await publishWithMsgIdTraced(js, 'quiet.a', enc('x'), 'quiet-1');
    const msg = await (await js.consumers.get('QUIET', 'q')).next({ expires: 5_000 });
    expect(msg?.headers?.has('traceparent')).toBe(false);
    expect(await consumeSpan(msg!, undefined, (span) => span.isRecording())).toBe(false);
    msg!.ack();
    expect(injectNatsHeaders().keys()).toEqual([]);
    expect(extractNatsContext(undefined)).toBe(ROOT_CONTEXT);

    // metrics are no-ops
    const m = createMetrics(t.meter);
    m.recordEvaluation(12, 'ok');
    m.trainingLoss.record(1.5);
    const stop = m.observeQueueLag(() => ({ pending: 1 }));
    stop();
    expect(withSpan('nothing', (s) => s.isRecording())).toBe(false);
    expect(context.active()).toBe(ROOT_CONTEXT);
    await t.shutdown();
  });

  it('metrics instruments record values readable through the in-memory reader', async () => {
    const t = initTelemetry({
      serviceName: 'metrics',
      serviceVersion: '1.2.3',
      env: {},
      exporter: 'memory',
    });
    try {
      const m = createMetrics(); // global meter = the one initTelemetry registered
      m.recordEvaluation(120, 'ok');
      m.recordEvaluation(480, 'ok');
      m.recordEvaluation(30, 'failed');
      m.trainingLoss.record(2.3, { 'metaprune.job.id': 'j1', phase: 'train' });
      m.trainingLoss.record(1.7, { 'metaprune.job.id': 'j1', phase: 'train' });
      m.trainingAccuracy.record(0.61, { 'metaprune.job.id': 'j1', phase: 'val' });
      m.searchGeneration.record(4, { 'metaprune.search.id': 's1' });
      m.searchEvaluated.record(200, { 'metaprune.search.id': 's1' });

      // queue lag from a real JetStream consumer
      const jsm = await jetstreamManager(nc);
      await ensureWorkQueueStream(jsm, {
        name: 'LAG',
        subjects: ['lag.>'],
        duplicateWindowMs: 60_000,
      });
      await ensureDurableConsumer(jsm, 'LAG', {
        durable: 'workers',
        ackWaitMs: 30_000,
        maxDeliver: 3,
      });
      const js = jetstream(nc);
      for (let i = 0; i < 3; i++)
        await publishWithMsgIdTraced(js, 'lag.job', enc(`${i}`), `lag-${i}`);
      const stop = m.observeQueueLag(jetStreamQueueLag(jsm, 'LAG', 'workers'));

      let data = await t.collectMetrics();
      const byName = (all: MetricData[], name: string) => {
        const found = all.find((d) => d.descriptor.name === name);
        if (!found)
          throw new Error(`no metric ${name} in ${all.map((d) => d.descriptor.name).join(',')}`);
        return found;
      };
      const evals = byName(data, METRIC_NAMES.evaluationsTotal);
      expect(evals.dataPointType).toBe(DataPointType.SUM);
      const counts = Object.fromEntries(
        evals.dataPoints.map((p) => [String(p.attributes['metaprune.outcome']), p.value]),
      );
      expect(counts).toEqual({ ok: 2, failed: 1 });

      const duration = byName(data, METRIC_NAMES.evaluationDurationMs);
      expect(duration.descriptor.unit).toBe('ms');
      const okHist = duration.dataPoints.find((p) => p.attributes['metaprune.outcome'] === 'ok')!
        .value as Histogram;
      expect(okHist.count).toBe(2);
      expect(okHist.sum).toBe(600);
      expect(okHist.buckets.boundaries).toContain(600_000);

      const loss = byName(data, METRIC_NAMES.trainingLoss);
      expect(loss.dataPoints.map((p) => p.value)).toEqual([1.7]);
      expect(byName(data, METRIC_NAMES.trainingAccuracy).dataPoints[0]?.value).toBe(0.61);
      expect(byName(data, METRIC_NAMES.searchGeneration).dataPoints[0]).toMatchObject({
        value: 4,
        attributes: { 'metaprune.search.id': 's1' },
      });
      expect(byName(data, METRIC_NAMES.searchEvaluated).dataPoints[0]?.value).toBe(200);
      expect(byName(data, METRIC_NAMES.queueLag).dataPoints[0]).toMatchObject({
        value: 3,
        attributes: { 'messaging.nats.stream': 'LAG', 'messaging.consumer.group.name': 'workers' },
      });
      expect(byName(data, METRIC_NAMES.queueInFlight).dataPoints[0]?.value).toBe(0);

      // one job taken and not acked yet: 2 waiting, 1 in flight
      const msg = await (await js.consumers.get('LAG', 'workers')).next({ expires: 5_000 });
      expect(msg).not.toBeNull();
      data = await t.collectMetrics();
      expect(byName(data, METRIC_NAMES.queueLag).dataPoints[0]?.value).toBe(2);
      expect(byName(data, METRIC_NAMES.queueInFlight).dataPoints[0]?.value).toBe(1);
      msg!.ack();
      stop();

      // a failing source skips the observation instead of breaking collection
      const stopBad = m.observeQueueLag(() => Promise.reject(new Error('nats down')));
      data = await t.collectMetrics();
      expect(byName(data, METRIC_NAMES.evaluationsTotal).dataPoints).toHaveLength(2);
      stopBad();
    } finally {
      await t.shutdown();
    }
  });
});

describe('OTLP export to a real HTTP endpoint', () => {
  it('http/json: spans and metrics reach /v1/traces and /v1/metrics with the configured headers', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const t = initTelemetry({
        serviceName: 'from-code',
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s3cret%21',
          OTEL_SERVICE_NAME: 'otlp-json-svc',
        },
      });
      expect(t.config.traces.exporter).toBe('otlp');
      withSpan('exported span', () => undefined, { 'metaprune.search.id': 's9' });
      createMetrics(t.meter).recordEvaluation(5, 'ok');
      await t.shutdown();

      const traces = receiver.requests.filter((r) => r.path === '/v1/traces');
      const metrics = receiver.requests.filter((r) => r.path === '/v1/metrics');
      expect(traces.length).toBeGreaterThan(0);
      expect(metrics.length).toBeGreaterThan(0);
      expect(traces[0]?.contentType).toContain('application/json');
      expect(traces[0]?.headers['x-api-key']).toBe('s3cret!');
      const body = JSON.parse(traces.map((r) => r.body.toString()).join('')) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: Array<{ name: string }> }>;
        }>;
      };
      const rs = body.resourceSpans[0]!;
      expect(rs.scopeSpans.flatMap((s) => s.spans.map((x) => x.name))).toEqual(['exported span']);
      expect(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue).toBe(
        'otlp-json-svc',
      );
      expect(metrics.map((r) => r.body.toString()).join('')).toContain('evaluations_total');
    } finally {
      await receiver.close();
    }
  });

  it('http/protobuf (the default) exports protobuf', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const t = initTelemetry({
        serviceName: 'proto-svc',
        env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/custom/traces` },
      });
      expect(t.config.metrics.exporter).toBe('none');
      withSpan('protobuf span', () => undefined);
      await t.forceFlush();
      await waitFor(() => receiver.requests.length > 0);
      const req = receiver.requests[0]!;
      expect(req.path).toBe('/custom/traces');
      expect(req.contentType).toBe('application/x-protobuf');
      expect(req.body.includes(Buffer.from('protobuf span'))).toBe(true);
      expect(req.body.includes(Buffer.from('proto-svc'))).toBe(true);
      await t.shutdown();
    } finally {
      await receiver.close();
    }
  });
});
