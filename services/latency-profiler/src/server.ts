/**
 * In-process start of the latency profiler: NATS (KV bucket + object store), the gRPC
 * server with health checking; and its orderly shutdown (health NOT_SERVING -> in-flight
 * calls finish -> NATS drains).
 */
import {
  connectNats,
  createLogger,
  type GrpcServerHandle,
  type Logger,
  natsSecurity,
  serverTlsCredentials,
  startGrpcServer,
} from '@metaprune/runtime';
import type { NatsConnection } from '@nats-io/transport-node';
import { defaultConfig, type LatencyProfilerConfig } from './config.js';
import { createLatencyProfilerService } from './service.js';
import { NatsLatencyStore } from './store.js';

/** Settings (every one optional: defaults as in CONFIG_SCHEMA) plus in-process hooks. */
export type LatencyProfilerOptions = Partial<LatencyProfilerConfig> & {
  logger?: Logger;
  /** Use this NATS connection instead of connecting (it is not drained on shutdown). */
  nc?: NatsConnection;
};

export interface LatencyProfilerHandle {
  readonly port: number;
  /** host:port of the gRPC server. */
  readonly address: string;
  readonly config: LatencyProfilerConfig;
  readonly grpc: GrpcServerHandle;
  /** The orderly shutdown (idempotent); resolves when everything is closed. */
  shutdown(): Promise<void>;
}

export async function startLatencyProfiler(
  options: LatencyProfilerOptions = {},
): Promise<LatencyProfilerHandle> {
  const { logger: givenLogger, nc: givenNc, ...settings } = options;
  const config: LatencyProfilerConfig = Object.freeze({
    ...defaultConfig(),
    ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)),
  }) as LatencyProfilerConfig;
  const logger =
    givenLogger ?? createLogger({ service: 'latency-profiler', level: config.logLevel });
  const nc =
    givenNc ??
    (await connectNats({
      servers: [...config.natsUrl],
      name: `latency-profiler-${process.pid}`,
      ...natsSecurity(config),
      logger,
    }));
  const store = await NatsLatencyStore.open(nc, {
    devicesBucket: config.devicesBucket,
    tablesBucket: config.tablesBucket,
  });
  const { registration } = createLatencyProfilerService({
    store,
    logger,
    predictorCacheSize: config.predictorCache,
    ...(config.registrationToken !== undefined
      ? { registrationToken: config.registrationToken }
      : {}),
  });
  const grpc = await startGrpcServer({
    host: config.host,
    port: config.port,
    services: [registration],
    maxMessageBytes: config.maxMessageBytes,
    credentials: serverTlsCredentials(config),
    ...(config.healthPort !== undefined ? { healthPort: config.healthPort } : {}),
    logger,
  });
  let closing: Promise<void> | undefined;
  return {
    port: grpc.port,
    address: grpc.address,
    config,
    grpc,
    shutdown() {
      closing ??= (async () => {
        await grpc.shutdown(config.shutdownGrace);
        if (!givenNc) await nc.drain();
        logger.info('latency profiler stopped');
      })();
      return closing;
    },
  };
}
