/**
 * Settings of the latency profiler. `src/main.ts` loads them from flags and the environment
 * (prefix LATENCY_PROFILER_, e.g. LATENCY_PROFILER_NATS_URL or --nats-url); in-process
 * callers pass them to `startLatencyProfiler`, where every setting left out takes its default.
 */
import {
  defineConfig,
  grpcServerSettings,
  type InferConfig,
  LOG_LEVEL_SETTINGS,
  loadConfig,
  NATS_SECURITY_SETTINGS,
} from '@metaprune/runtime';
import { DEFAULT_PORTS, NATS_NAMES } from '@metaprune/wire';
import { TABLES_BUCKET } from './store.js';

export const ENV_PREFIX = 'LATENCY_PROFILER_';

export const CONFIG_SCHEMA = defineConfig({
  ...grpcServerSettings(DEFAULT_PORTS.latencyProfiler),
  natsUrl: {
    type: 'list',
    default: ['nats://127.0.0.1:4222'],
    doc: 'NATS server URL(s), comma-separated (JetStream must be enabled)',
  },
  ...NATS_SECURITY_SETTINGS,
  devicesBucket: {
    type: 'string',
    default: NATS_NAMES.devicesBucket,
    pattern: /^[A-Za-z0-9_-]+$/,
    doc: 'JetStream KV bucket of devices and their table versions',
  },
  tablesBucket: {
    type: 'string',
    default: TABLES_BUCKET,
    pattern: /^[A-Za-z0-9_-]+$/,
    doc: 'JetStream object store bucket of the uploaded tables',
  },
  registrationToken: {
    type: 'string',
    secret: true,
    doc: 'when set, RegisterDevice needs "authorization: Bearer <token>" (uploads always need the device token)',
  },
  predictorCache: {
    type: 'int',
    default: 16,
    min: 1,
    max: 10_000,
    doc: 'compiled table predictors kept in memory for PredictLatency',
  },
  maxMessageBytes: {
    type: 'int',
    default: 64 * 1024 * 1024,
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
    doc: 'largest gRPC message in or out (a full MobileNetV2 table is ~1.5 MB); larger: RESOURCE_EXHAUSTED',
  },
  shutdownGrace: {
    type: 'duration',
    default: '10s',
    min: 100,
    doc: 'on SIGTERM: time for in-flight calls to finish before they are cut',
  },
  ...LOG_LEVEL_SETTINGS,
});

export type LatencyProfilerConfig = InferConfig<typeof CONFIG_SCHEMA>;

/** The defaults of every setting (no environment or flags read). */
export function defaultConfig(): LatencyProfilerConfig {
  return loadConfig(CONFIG_SCHEMA, { env: {}, flags: {} });
}
