#!/usr/bin/env node
/**
 * The controller process. Configuration: env `CONTROLLER_*` or flags (see config.ts, e.g.
 * `--port 50052 --nats-url nats://127.0.0.1:4222 --weight-generator 127.0.0.1:50051`);
 * `--help` lists them with their defaults. Prints one JSON line on stdout once it serves:
 * `{"service":"controller","address":"host:port"}`. SIGTERM / SIGINT: health NOT_SERVING,
 * in-flight calls finish, search runners stop (the searches stay RUNNING in KV and resume
 * on the next start), NATS drains, exit 0.
 */
import { natsSecurity, runServiceMain, serverTlsCredentials } from '@metaprune/runtime';
import { CONTROLLER_CONFIG, ENV_PREFIX } from './config.js';
import { startController } from './server.js';

runServiceMain({
  service: 'controller',
  title: 'metaprune controller',
  envPrefix: ENV_PREFIX,
  schema: CONTROLLER_CONFIG,
  graceMs: (cfg) => cfg.grace,
  start: async (cfg, logger) => {
    const handle = await startController({
      natsUrl: cfg.natsUrl,
      natsAuth: natsSecurity(cfg),
      credentials: serverTlsCredentials(cfg),
      clientTls: cfg,
      ...(cfg.healthPort !== undefined ? { healthPort: cfg.healthPort } : {}),
      ...(cfg.authToken ? { authToken: cfg.authToken } : {}),
      maxMessageBytes: cfg.maxMessageBytes,
      weightGenerator: cfg.weightGenerator,
      ...(cfg.latencyProfiler ? { latencyProfiler: cfg.latencyProfiler } : {}),
      host: cfg.host,
      port: cfg.port,
      stallCheckMs: cfg.stallCheck,
      deadJobTimeoutMs: cfg.deadJobTimeout,
      maxConcurrentSearches: cfg.maxConcurrentSearches,
      logger,
    });
    return {
      // `health`: the plaintext health-only address, when one is configured
      announce: {
        address: handle.address,
        ...(handle.grpc.healthAddress ? { health: handle.grpc.healthAddress } : {}),
      },
      close: () => handle.close(Math.max(1000, cfg.grace - 3000)),
    };
  },
});
