import {
  defineConfig,
  grpcServerSettings,
  LOG_LEVEL_SETTINGS,
  NATS_SECURITY_SETTINGS,
} from '@metaprune/runtime';
import { DEFAULT_PORTS } from '@metaprune/wire';

/** Prefix of the environment variables (`CONTROLLER_NATS_URL`, ...). */
export const ENV_PREFIX = 'CONTROLLER_';

/**
 * Settings of the controller. Env vars take the prefix `CONTROLLER_`
 * (e.g. `CONTROLLER_NATS_URL`), flags are kebab-case (`--nats-url`). Only `main.ts` loads it.
 */
export const CONTROLLER_CONFIG = defineConfig({
  ...grpcServerSettings(DEFAULT_PORTS.controller),
  natsUrl: {
    type: 'string',
    default: 'nats://127.0.0.1:4222',
    doc: 'NATS server URL(s), comma-separated',
  },
  ...NATS_SECURITY_SETTINGS,
  authToken: {
    type: 'string',
    secret: true,
    doc: 'when set, StartSearch and CancelSearch need "authorization: Bearer <token>"',
  },
  maxMessageBytes: {
    type: 'int',
    default: 4 * 1024 * 1024,
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
    doc: 'largest gRPC message in or out; larger requests get RESOURCE_EXHAUSTED',
  },
  weightGenerator: {
    type: 'string',
    default: '127.0.0.1:50051',
    doc: 'host:port of the weight generator (PruningNet look-ups)',
  },
  latencyProfiler: {
    type: 'string',
    doc: 'host:port of the latency profiler, whose device tables serve latency budgets (unset: searches with maxLatencyMs are refused)',
  },
  stallCheck: {
    type: 'duration',
    default: '5s',
    min: 100,
    doc: 'how often outstanding evaluations are checked (missed results, lost jobs)',
  },
  deadJobTimeout: {
    type: 'duration',
    default: 0,
    doc: 'a job queued this long without a result is recorded FAILED (0 = never; the max-deliveries advisory covers crashes)',
  },
  maxConcurrentSearches: {
    type: 'int',
    default: 16,
    min: 1,
    max: 10_000,
    doc: 'searches running at once; more are refused with RESOURCE_EXHAUSTED',
  },
  grace: {
    type: 'duration',
    default: '15s',
    min: 1000,
    doc: 'on SIGTERM, exit 1 if shutdown has not finished after this long',
  },
  ...LOG_LEVEL_SETTINGS,
});
