import {
  defineConfig,
  GRPC_TLS_SETTINGS,
  LOG_LEVEL_SETTINGS,
  NATS_SECURITY_SETTINGS,
} from '@metaprune/runtime';

/** Prefix of the environment variables (`EVALUATOR_NATS_URL`, ...). */
export const ENV_PREFIX = 'EVALUATOR_';

/**
 * Settings of an evaluator process. Env vars take the prefix `EVALUATOR_`
 * (e.g. `EVALUATOR_NATS_URL`), flags are kebab-case (`--nats-url`). Only `main.ts` loads it.
 */
export const EVALUATOR_CONFIG = defineConfig({
  natsUrl: {
    type: 'string',
    default: 'nats://127.0.0.1:4222',
    doc: 'NATS server URL(s), comma-separated',
  },
  ...NATS_SECURITY_SETTINGS,
  // the evaluator only calls (GenerateWeights); its health server stays plaintext
  ...GRPC_TLS_SETTINGS,
  weightGenerator: {
    type: 'string',
    default: '127.0.0.1:50051',
    doc: 'host:port of the weight generator (GenerateWeights)',
  },
  healthHost: {
    type: 'string',
    default: '127.0.0.1',
    doc: 'interface of the health-only gRPC server',
  },
  healthPort: {
    type: 'int',
    default: 50054,
    min: 0,
    max: 65535,
    doc: 'port of the health-only gRPC server (0 = any free port)',
  },
  id: { type: 'string', default: '', doc: 'evaluator id in results and logs (default host:pid)' },
  ackWait: {
    type: 'duration',
    default: '30s',
    min: 1000,
    doc: 'ack wait of the shared consumer: a job without heartbeats is redelivered after this',
  },
  heartbeat: {
    type: 'duration',
    default: 0,
    doc: 'in-progress heartbeat interval (0 = ackWait / 3)',
  },
  maxAttempts: {
    type: 'int',
    default: 3,
    min: 1,
    max: 100,
    doc: 'evaluations of one job (crashes and transient failures) before it is recorded FAILED',
  },
  maxDeliver: {
    type: 'int',
    default: 0,
    min: 0,
    max: 1000,
    doc: 'consumer max deliveries, the broker backstop (0 = maxAttempts + 2)',
  },
  pullExpires: {
    type: 'duration',
    default: '2s',
    min: 1000,
    max: 60_000,
    doc: 'how long one pull waits for a job (bounds how fast a stop is noticed)',
  },
  retryDelay: {
    type: 'duration',
    default: '1s',
    doc: 'delay before a transiently failed job is redelivered, times the attempt',
  },
  drainTimeout: {
    type: 'duration',
    default: '20s',
    doc: 'on SIGTERM, how long the current job may finish before it is handed back',
  },
  grace: {
    type: 'duration',
    default: '30s',
    min: 1000,
    doc: 'on SIGTERM, exit 1 if shutdown has not finished after this long',
  },
  dataRoot: {
    type: 'string',
    default: '/usr/share/datasets',
    doc: 'datasets: fashion-mnist and cifar10 are read from <data-root>/<name>, "dir:<path>" and "imagefolder:<path>" below it',
  },
  backend: {
    type: 'enum',
    values: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
    default: 'auto',
    doc: 'tfjs backend (auto = first available: tensorflow-gpu, tensorflow, wasm, cpu)',
  },
  chaosPoisonFraction: {
    type: 'float',
    default: 0,
    min: 0,
    max: 1,
    doc: 'CHAOS, tests only: fraction of candidates (by a hash of the encoding) whose evaluation kills this process with SIGKILL (0 = off)',
  },
  ...LOG_LEVEL_SETTINGS,
});
