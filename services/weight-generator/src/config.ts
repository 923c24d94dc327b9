/**
 * Settings of the weight generator. `src/main.ts` loads them from flags and the
 * environment (prefix WEIGHTGEN_, e.g. WEIGHTGEN_NATS_URL or --nats-url); in-process callers
 * pass them to `startWeightGenerator`, where every setting left out takes its default.
 */
import {
  DEFAULT_PORTS,
  defineConfig,
  grpcServerSettings,
  type InferConfig,
  LOG_LEVEL_SETTINGS,
  loadConfig,
  NATS_SECURITY_SETTINGS,
} from '@metaprune/runtime';

export const ENV_PREFIX = 'WEIGHTGEN_';

export const CONFIG_SCHEMA = defineConfig({
  ...grpcServerSettings(DEFAULT_PORTS.weightGenerator),
  natsUrl: {
    type: 'list',
    default: ['nats://127.0.0.1:4222'],
    doc: 'NATS server URL(s), comma-separated',
  },
  ...NATS_SECURITY_SETTINGS,
  checkpointRoot: {
    type: 'string',
    default: '.metaprune/checkpoints',
    doc: 'directory of PruningNet checkpoints (pruningnets/<id>/v<N>/) and job scratch space',
  },
  exportRoot: {
    type: 'string',
    default: '.metaprune/exports',
    doc: 'directory ExportNetwork writes below; request paths cannot leave it',
  },
  dataRoot: {
    type: 'string',
    default: '/usr/share/datasets',
    doc: 'datasets: fashion-mnist and cifar10 are read from <data-root>/<name>; "dir:<path>" and "imagefolder:<path>" datasets below it (request paths cannot leave it)',
  },
  backend: {
    type: 'enum',
    values: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
    default: 'auto',
    doc: 'tfjs backend for training and weight generation',
  },
  maxMessageBytes: {
    type: 'int',
    default: 32 * 1024 * 1024,
    min: 64 * 1024,
    max: 1024 * 1024 * 1024,
    doc: 'largest gRPC message in or out; larger requests get RESOURCE_EXHAUSTED',
  },
  progressInterval: {
    type: 'duration',
    default: '1s',
    min: 50,
    doc: 'least time between two progress reports of a training job (epoch ends always report)',
  },
  trainWorkers: {
    type: 'int',
    default: 0,
    min: 0,
    max: 64,
    doc: 'data-parallel threads of a training job (0 = two, or one on a single core); fixed per job',
  },
  keepVersions: {
    type: 'int',
    default: 0,
    min: 0,
    max: 1_000_000,
    doc: 'checkpoint versions kept per PruningNet, oldest deleted first (0 = keep all)',
  },
  exportRecalBatches: {
    type: 'int',
    default: 100,
    min: 1,
    max: 10_000,
    doc: 'ExportNetwork: sub-train batches of 64 images that recompute BatchNorm statistics (reference: 100)',
  },
  cacheSize: {
    type: 'int',
    default: 2,
    min: 1,
    max: 1000,
    doc: 'PruningNet versions kept loaded for GenerateWeights / ExportNetwork',
  },
  authToken: {
    type: 'string',
    secret: true,
    doc: 'when set, StartTraining and CancelTraining need "authorization: Bearer <token>"',
  },
  shutdownGrace: {
    type: 'duration',
    default: '60s',
    min: 1000,
    doc: 'on SIGTERM: time to checkpoint the running job and finish in-flight calls',
  },
  ...LOG_LEVEL_SETTINGS,
});

export type WeightGeneratorConfig = InferConfig<typeof CONFIG_SCHEMA>;

/** The defaults of every setting (no environment or flags read). */
export function defaultConfig(): WeightGeneratorConfig {
  return loadConfig(CONFIG_SCHEMA, { env: {}, flags: {} });
}
