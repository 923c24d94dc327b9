/**
 * In-process start of the weight generator: checkpoint store, NATS (KV bucket + events),
 * training job manager, weight cache, gRPC server with health checking; and its orderly
 * shutdown (health NOT_SERVING → stop taking jobs → checkpoint and pause the running job →
 * end watch streams → finish in-flight calls → drain NATS).
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { weightgen } from '@metaprune/proto';
import {
  connectNats,
  createLogger,
  type GrpcServerHandle,
  type Logger,
  natsSecurity,
  openKv,
  serverTlsCredentials,
  startGrpcServer,
} from '@metaprune/runtime';
import { NATS_NAMES } from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { PruningNetCache } from './cache.js';
import { defaultConfig, type WeightGeneratorConfig } from './config.js';
import { JobManager } from './jobs.js';
import { ProcessExporter, ProcessTrainer } from './runner.js';
import { WeightGeneratorHandlers } from './service.js';
import { CheckpointStore } from './store.js';
import type { Exporter, Trainer, WeightEngine } from './types.js';

/** Settings (every one optional: defaults as in CONFIG_SCHEMA) plus in-process hooks. */
export type WeightGeneratorOptions = Partial<WeightGeneratorConfig> & {
  logger?: Logger;
  /** Runs training jobs (default: a child process per job running the engine). */
  trainer?: Trainer;
  /** Loads checkpoints for GenerateWeights (default: the engine, in this process). */
  engine?: WeightEngine;
  /** Runs ExportNetwork (default: a child process per export running the engine). */
  exporter?: Exporter;
  /** Use this NATS connection instead of connecting (it is not drained on shutdown). */
  nc?: NatsConnection;
};

export interface WeightGeneratorHandle {
  readonly port: number;
  /** host:port of the gRPC server. */
  readonly address: string;
  readonly config: WeightGeneratorConfig;
  readonly store: CheckpointStore;
  readonly jobs: JobManager;
  readonly grpc: GrpcServerHandle;
  /** The orderly shutdown (idempotent); resolves when everything is closed. */
  shutdown(): Promise<void>;
}

export async function startWeightGenerator(
  options: WeightGeneratorOptions = {},
): Promise<WeightGeneratorHandle> {
  const {
    logger: givenLogger,
    trainer: givenTrainer,
    engine: givenEngine,
    exporter: givenExporter,
    nc: givenNc,
    ...settings
  } = options;
  const config: WeightGeneratorConfig = Object.freeze({
    ...defaultConfig(),
    ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)),
  }) as WeightGeneratorConfig;
  const logger =
    givenLogger ?? createLogger({ service: 'weight-generator', level: config.logLevel });

  const store = new CheckpointStore(resolve(config.checkpointRoot), logger);
  await store.init();
  const exportRoot = resolve(config.exportRoot);
  await mkdir(exportRoot, { recursive: true });

  const nc =
    givenNc ??
    (await connectNats({
      servers: [...config.natsUrl],
      name: `weight-generator-${process.pid}`,
      ...natsSecurity(config),
      logger,
    }));
  let kv: KV;
  try {
    kv = await openKv(jetstream(nc), NATS_NAMES.trainingBucket, { history: 1 });
  } catch (err) {
    if (!givenNc) await nc.close();
    throw err;
  }

  const trainer =
    givenTrainer ??
    new ProcessTrainer({ stopGraceMs: Math.max(1000, config.shutdownGrace - 2000), logger });
  let engine = givenEngine;
  const lazyEngine: WeightEngine = {
    load: async (dir, cfg) => {
      if (!engine) {
        const { createWeightEngine } = await import('./engine-adapter.js');
        engine = createWeightEngine({ backend: config.backend, logger });
      }
      return engine.load(dir, cfg);
    },
  };
  const cache = new PruningNetCache(lazyEngine, config.cacheSize, logger);
  const exporter = givenExporter ?? new ProcessExporter({ logger });
  const jobs = new JobManager({
    nc,
    kv,
    store,
    trainer,
    backend: config.backend,
    progressIntervalMs: config.progressInterval,
    keepVersions: config.keepVersions,
    logger,
  });
  const handlers = new WeightGeneratorHandlers({
    jobs,
    store,
    cache,
    exporter,
    exportRecalBatches: config.exportRecalBatches,
    backend: config.backend,
    kv,
    dataRoot: resolve(config.dataRoot),
    exportRoot,
    maxMessageBytes: config.maxMessageBytes,
    authToken: config.authToken === '' ? undefined : config.authToken,
    trainWorkers: config.trainWorkers,
    logger,
  });

  let grpc: GrpcServerHandle;
  try {
    grpc = await startGrpcServer({
      host: config.host,
      port: config.port,
      services: [
        {
          definition: weightgen.WeightGeneratorServiceService,
          implementation: handlers.implementation(),
        },
      ],
      maxMessageBytes: config.maxMessageBytes,
      credentials: serverTlsCredentials(config),
      ...(config.healthPort !== undefined ? { healthPort: config.healthPort } : {}),
      logger,
    });
  } catch (err) {
    if (!givenNc) await nc.close();
    throw err;
  }
  await jobs.recover();
  logger.info('weight generator ready', {
    address: grpc.address,
    checkpointRoot: store.root,
    exportRoot,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('weight generator shutting down');
      grpc.health.setAll('NOT_SERVING');
      try {
        await jobs.pause();
      } catch (err) {
        logger.error('pausing the training job failed', { err });
      }
      handlers.closeWatchers();
      await grpc.shutdown(config.shutdownGrace);
      cache.clear();
      if (trainer instanceof ProcessTrainer) trainer.killAll();
      if (exporter instanceof ProcessExporter) exporter.killAll();
      if (!givenNc) {
        try {
          await nc.drain();
        } catch (err) {
          logger.warn('draining NATS failed', { err });
        }
      }
      logger.info('weight generator stopped');
    })();
    return stopping;
  };

  return {
    port: grpc.port,
    address: grpc.address,
    config,
    store,
    jobs,
    grpc,
    shutdown,
  };
}
