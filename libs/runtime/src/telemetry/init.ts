/**
 * OpenTelemetry bootstrap. `initTelemetry` registers a tracer provider, a meter provider, the
 * W3C trace-context propagator and an AsyncLocalStorage context manager — but only when the
 * standard OTEL_* variables (or an explicit `exporter`) ask for it. Otherwise nothing is
 * registered and every helper in this folder runs against the API's no-op implementation.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import {
  type Attributes,
  context,
  type Meter,
  metrics,
  propagation,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import type * as MetricsOtlpHttp from '@opentelemetry/exporter-metrics-otlp-http';
import type * as MetricsOtlpProto from '@opentelemetry/exporter-metrics-otlp-proto';
import type * as TraceOtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as TraceOtlpProto from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  ConsoleMetricExporter,
  MeterProvider,
  type MetricData,
  MetricReader,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  InMemorySpanExporter,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { type Logger, nullLogger } from '../log.js';

/** Name of the tracer and meter used by the helpers (instrumentation scope). */
export const TELEMETRY_SCOPE = '@metaprune/runtime';

export type TelemetryExporter = 'otlp' | 'memory' | 'none';
export type SignalExporter = 'otlp' | 'console' | 'memory' | 'none';
export type OtlpProtocol = 'http/protobuf' | 'http/json';

export type TelemetryEnv = Record<string, string | undefined>;

export interface InitTelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** Where OTEL_* settings are read (default process.env). */
  env?: TelemetryEnv;
  /**
   * Force a mode: 'memory' (tests: in-memory span exporter and metric reader), 'otlp'
   * (export even without an endpoint variable; default endpoint http://localhost:4318), or
   * 'none'. Default: decided by the OTEL_* variables. OTEL_SDK_DISABLED=true always wins.
   */
  exporter?: TelemetryExporter;
  /** Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES overrides them). */
  resourceAttributes?: Attributes;
  /** Where configuration warnings go. */
  logger?: Logger;
}

export interface OtlpSignalConfig {
  url: string;
  protocol: OtlpProtocol;
  headers: Record<string, string>;
  timeoutMs: number;
  compression: 'gzip' | 'none';
}

export interface ResolvedTelemetryConfig {
  serviceName: string;
  resourceAttributes: Record<string, string>;
  traces: { exporter: SignalExporter; otlp?: OtlpSignalConfig; sampler: string };
  metrics: {
    exporter: SignalExporter;
    otlp?: OtlpSignalConfig;
    intervalMs: number;
    timeoutMs: number;
    temporality: 'cumulative' | 'delta' | 'lowmemory';
  };
}

/** A pull reader for tests: `collect()` returns what the instruments recorded so far. */
export class InMemoryMetricReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Telemetry {
  /** True when at least one signal is recorded (traces or metrics). */
  readonly enabled: boolean;
  readonly serviceName: string;
  readonly config: ResolvedTelemetryConfig;
  /** Tracer of this service (a no-op one when traces are off). */
  readonly tracer: Tracer;
  /** Meter of this service (a no-op one when metrics are off). */
  readonly meter: Meter;
  /** Finished spans, when traces go to memory. */
  readonly memoryExporter?: InMemorySpanExporter;
  /** The metric reader, when metrics go to memory. */
  readonly metricReader?: InMemoryMetricReader;
  /** All metrics recorded so far (memory mode; [] otherwise). */
  collectMetrics(): Promise<MetricData[]>;
  /** Exports everything buffered. */
  forceFlush(): Promise<void>;
  /** Flushes, shuts the providers down and unregisters the globals it set. Idempotent. */
  shutdown(): Promise<void>;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);

function str(env: TelemetryEnv, key: string): string | undefined {
  const v = env[key]?.trim();
  return v ? v : undefined;
}

function num(env: TelemetryEnv, key: string, dflt: number, logger: Logger): number {
  const raw = str(env, key);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    logger.warn('ignoring invalid telemetry setting', { key, value: raw });
    return dflt;
  }
  return n;
}

/** "k1=v1,k2=v2" (values URL-encoded), as in OTEL_RESOURCE_ATTRIBUTES and *_HEADERS. */
export function parseKeyValueList(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep the raw value
    }
    if (key) out[key] = value;
  }
  return out;
}

function signalExporter(
  env: TelemetryEnv,
  signal: 'TRACES' | 'METRICS',
  forced: TelemetryExporter | undefined,
  logger: Logger,
): SignalExporter {
  const listed = str(env, `OTEL_${signal}_EXPORTER`)
    ?.split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (forced === 'none') return 'none';
  if (forced === 'memory') return 'memory';
  if (listed?.includes('none')) return 'none';
  if (forced === 'otlp') return 'otlp';
  if (listed && listed.length > 0) {
    if (listed.includes('otlp')) return 'otlp';
    if (listed.includes('console')) return 'console';
    logger.warn('unsupported telemetry exporter; signal disabled', {
      key: `OTEL_${signal}_EXPORTER`,
      value: listed.join(','),
      supported: 'otlp, console, none',
    });
    return 'none';
  }
  // Not named: export only when an OTLP endpoint is configured.
  const endpoint =
    str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') ?? str(env, `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`);
  return endpoint ? 'otlp' : 'none';
}

function otlpConfig(env: TelemetryEnv, signal: 'TRACES' | 'METRICS'): OtlpSignalConfig {
  const path = signal === 'TRACES' ? 'v1/traces' : 'v1/metrics';
  const specific = str(env, `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`);
  const base = str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const url =
    specific ?? (base ? `${base.replace(/\/+$/, '')}/${path}` : `http://localhost:4318/${path}`);
  const protocol = (
    str(env, `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`) ??
    str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ??
    'http/protobuf'
  ).toLowerCase();
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new Error(
      `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported; use http/protobuf (the ` +
        'default, collector port 4318) or http/json',
    );
  }
  const compression = (
    str(env, `OTEL_EXPORTER_OTLP_${signal}_COMPRESSION`) ??
    str(env, 'OTEL_EXPORTER_OTLP_COMPRESSION') ??
    'none'
  ).toLowerCase();
  const timeoutRaw =
    str(env, `OTEL_EXPORTER_OTLP_${signal}_TIMEOUT`) ?? str(env, 'OTEL_EXPORTER_OTLP_TIMEOUT');
  const timeout = timeoutRaw === undefined ? Number.NaN : Number(timeoutRaw);
  return {
    url,
    protocol,
    headers: {
      ...parseKeyValueList(str(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
      ...parseKeyValueList(str(env, `OTEL_EXPORTER_OTLP_${signal}_HEADERS`)),
    },
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 10_000,
    compression: compression === 'gzip' ? 'gzip' : 'none',
  };
}

/** How the OTEL_* variables (and `exporter`) configure telemetry; pure, for tests and docs. */
export function resolveTelemetryConfig(opts: InitTelemetryOptions): ResolvedTelemetryConfig {
  const env = opts.env ?? process.env;
  const logger = opts.logger ?? nullLogger;
  const disabled = TRUE.has((str(env, 'OTEL_SDK_DISABLED') ?? '').toLowerCase());
  const forced: TelemetryExporter | undefined = disabled ? 'none' : opts.exporter;
  const resourceAttributes = parseKeyValueList(str(env, 'OTEL_RESOURCE_ATTRIBUTES'));
  const serviceName =
    str(env, 'OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? opts.serviceName;
  const tracesExporter = signalExporter(env, 'TRACES', forced, logger);
  const metricsExporter = signalExporter(env, 'METRICS', forced, logger);
  const intervalMs = num(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, logger);
  const temporality = (
    str(env, 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE') ?? 'cumulative'
  ).toLowerCase();
  return {
    serviceName,
    resourceAttributes,
    traces: {
      exporter: tracesExporter,
      ...(tracesExporter === 'otlp' ? { otlp: otlpConfig(env, 'TRACES') } : {}),
      sampler: samplerSpec(env),
    },
    metrics: {
      exporter: metricsExporter,
      ...(metricsExporter === 'otlp' ? { otlp: otlpConfig(env, 'METRICS') } : {}),
      intervalMs,
      timeoutMs: Math.min(intervalMs, num(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 30_000, logger)),
      temporality:
        temporality === 'delta'
          ? 'delta'
          : temporality === 'lowmemory'
            ? 'lowmemory'
            : 'cumulative',
    },
  };
}

function samplerSpec(env: TelemetryEnv): string {
  const name = (str(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  const arg = str(env, 'OTEL_TRACES_SAMPLER_ARG');
  return name.endsWith('traceidratio') ? `${name}:${arg ?? '1'}` : name;
}

function buildSampler(spec: string, logger: Logger): Sampler {
  const [name = '', arg] = spec.split(':');
  const ratio = (): Sampler => {
    const r = Number(arg);
    return new TraceIdRatioBasedSampler(Number.isFinite(r) && r >= 0 && r <= 1 ? r : 1);
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      logger.warn('unsupported OTEL_TRACES_SAMPLER; using parentbased_always_on', { name });
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

type OtlpTraceOptions = NonNullable<
  ConstructorParameters<typeof TraceOtlpProto.OTLPTraceExporter>[0]
>;
type OtlpMetricOptions = NonNullable<
  ConstructorParameters<typeof MetricsOtlpProto.OTLPMetricExporter>[0]
>;

// The OTLP exporters (and their protobuf code) are loaded only when export is configured, so
// a service without OTEL_* settings does not pay for them. The packages are CommonJS.
const load = createRequire(import.meta.url);

function traceExporter(cfg: OtlpSignalConfig): SpanExporter {
  const options: OtlpTraceOptions = {
    url: cfg.url,
    headers: cfg.headers,
    timeoutMillis: cfg.timeoutMs,
    compression: cfg.compression as OtlpTraceOptions['compression'],
  };
  return cfg.protocol === 'http/json'
    ? new (
        load('@opentelemetry/exporter-trace-otlp-http') as typeof TraceOtlpHttp
      ).OTLPTraceExporter(options)
    : new (
        load('@opentelemetry/exporter-trace-otlp-proto') as typeof TraceOtlpProto
      ).OTLPTraceExporter(options);
}

function metricExporter(
  cfg: OtlpSignalConfig,
  temporality: ResolvedTelemetryConfig['metrics']['temporality'],
): PushMetricExporter {
  // AggregationTemporalityPreference: DELTA = 0, CUMULATIVE = 1, LOWMEMORY = 2
  const preference = temporality === 'delta' ? 0 : temporality === 'lowmemory' ? 2 : 1;
  const options: OtlpMetricOptions = {
    url: cfg.url,
    headers: cfg.headers,
    timeoutMillis: cfg.timeoutMs,
    compression: cfg.compression as OtlpMetricOptions['compression'],
    temporalityPreference: preference as OtlpMetricOptions['temporalityPreference'],
  };
  return cfg.protocol === 'http/json'
    ? new (
        load('@opentelemetry/exporter-metrics-otlp-http') as typeof MetricsOtlpHttp
      ).OTLPMetricExporter(options)
    : new (
        load('@opentelemetry/exporter-metrics-otlp-proto') as typeof MetricsOtlpProto
      ).OTLPMetricExporter(options);
}

/**
 * Sets up tracing and metrics for one service process. Call once at start-up and `shutdown()`
 * in the service's stop hook (it flushes what is buffered).
 */
export function initTelemetry(opts: InitTelemetryOptions): Telemetry {
  const logger = opts.logger ?? nullLogger;
  const config = resolveTelemetryConfig(opts);
  const tracesOn = config.traces.exporter !== 'none';
  const metricsOn = config.metrics.exporter !== 'none';

  if (!tracesOn && !metricsOn) {
    return {
      enabled: false,
      serviceName: config.serviceName,
      config,
      tracer: trace.getTracer(TELEMETRY_SCOPE),
      meter: metrics.getMeter(TELEMETRY_SCOPE),
      collectMetrics: () => Promise.resolve([]),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
  }

  const resource = resourceFromAttributes({
    'service.name': config.serviceName,
    ...(opts.serviceVersion ? { 'service.version': opts.serviceVersion } : {}),
    'service.instance.id': `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    'telemetry.sdk.language': 'nodejs',
    ...opts.resourceAttributes,
    ...config.resourceAttributes,
  });

  const unregister: Array<() => void> = [];
  const shutdowns: Array<() => Promise<void>> = [];
  const flushes: Array<() => Promise<void>> = [];

  let tracer: Tracer = trace.getTracer(TELEMETRY_SCOPE);
  let memoryExporter: InMemorySpanExporter | undefined;
  if (tracesOn) {
    let processor: SpanProcessor;
    if (config.traces.exporter === 'memory') {
      memoryExporter = new InMemorySpanExporter();
      processor = new SimpleSpanProcessor(memoryExporter);
    } else if (config.traces.exporter === 'console') {
      processor = new SimpleSpanProcessor(new ConsoleSpanExporter());
    } else {
      processor = new BatchSpanProcessor(traceExporter(config.traces.otlp!));
    }
    const provider = new BasicTracerProvider({
      resource,
      sampler: buildSampler(config.traces.sampler, logger),
      spanProcessors: [processor],
    });
    tracer = provider.getTracer(TELEMETRY_SCOPE, opts.serviceVersion);
    shutdowns.push(() => provider.shutdown());
    flushes.push(() => provider.forceFlush());

    const contextManager = new AsyncLocalStorageContextManager().enable();
    if (context.setGlobalContextManager(contextManager)) {
      unregister.push(() => context.disable());
    } else {
      contextManager.disable();
      logger.warn('a global OpenTelemetry context manager was already registered');
    }
    const propagator = new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    });
    if (propagation.setGlobalPropagator(propagator)) {
      unregister.push(() => propagation.disable());
    } else {
      logger.warn('a global OpenTelemetry propagator was already registered');
    }
    if (trace.setGlobalTracerProvider(provider)) {
      unregister.push(() => trace.disable());
    } else {
      logger.warn(
        'a global OpenTelemetry tracer provider was already registered; helpers will use it',
      );
    }
  }

  let meter: Meter = metrics.getMeter(TELEMETRY_SCOPE);
  let metricReader: InMemoryMetricReader | undefined;
  if (metricsOn) {
    let reader: MetricReader;
    if (config.metrics.exporter === 'memory') {
      metricReader = new InMemoryMetricReader();
      reader = metricReader;
    } else {
      reader = new PeriodicExportingMetricReader({
        exporter:
          config.metrics.exporter === 'console'
            ? new ConsoleMetricExporter({
                temporalitySelector: () => AggregationTemporality.CUMULATIVE,
              })
            : metricExporter(config.metrics.otlp!, config.metrics.temporality),
        exportIntervalMillis: config.metrics.intervalMs,
        exportTimeoutMillis: config.metrics.timeoutMs,
      });
    }
    const provider = new MeterProvider({ resource, readers: [reader] });
    meter = provider.getMeter(TELEMETRY_SCOPE, opts.serviceVersion);
    shutdowns.push(() => provider.shutdown());
    flushes.push(() => provider.forceFlush());
    if (metrics.setGlobalMeterProvider(provider)) {
      unregister.push(() => metrics.disable());
    } else {
      logger.warn(
        'a global OpenTelemetry meter provider was already registered; helpers will use it',
      );
    }
  }

  logger.info('telemetry enabled', {
    serviceName: config.serviceName,
    traces: config.traces.exporter,
    metrics: config.metrics.exporter,
    ...(config.traces.otlp ? { tracesUrl: config.traces.otlp.url } : {}),
    ...(config.metrics.otlp ? { metricsUrl: config.metrics.otlp.url } : {}),
  });

  let stopping: Promise<void> | undefined;
  const collectMetrics = async (): Promise<MetricData[]> => {
    if (!metricReader) return [];
    const { resourceMetrics } = await metricReader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  };
  return {
    enabled: true,
    serviceName: config.serviceName,
    config,
    tracer,
    meter,
    ...(memoryExporter ? { memoryExporter } : {}),
    ...(metricReader ? { metricReader } : {}),
    collectMetrics,
    async forceFlush() {
      await Promise.all(flushes.map((f) => f()));
    },
    shutdown() {
      stopping ??= (async () => {
        const results = await Promise.allSettled(shutdowns.map((s) => s()));
        for (const r of results) {
          if (r.status === 'rejected') {
            logger.warn('telemetry shutdown failed', { err: r.reason });
          }
        }
        for (const u of unregister) u();
      })();
      return stopping;
    },
  };
}
