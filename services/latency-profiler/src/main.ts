#!/usr/bin/env node
/**
 * Process entry of the latency profiler: the only place that reads flags and the
 * environment. Every setting is a flag (--nats-url) and an env variable
 * (LATENCY_PROFILER_NATS_URL); `--help` prints them with their defaults (see
 * src/config.ts). Prints one JSON line on stdout once it serves (`metaprune up` reads it;
 * `health` is the plaintext health-only address when one is configured). SIGTERM /
 * SIGINT: health NOT_SERVING, in-flight calls finish, NATS drains, exit 0.
 */
import { runServiceMain } from '@metaprune/runtime';
import { CONFIG_SCHEMA, ENV_PREFIX } from './config.js';
import { startLatencyProfiler } from './server.js';

runServiceMain({
  service: 'latency-profiler',
  title: 'metaprune latency profiler',
  envPrefix: ENV_PREFIX,
  schema: CONFIG_SCHEMA,
  graceMs: (config) => config.shutdownGrace + 5000,
  start: async (config, logger) => {
    const lp = await startLatencyProfiler({ ...config, logger });
    return {
      announce: {
        address: lp.address,
        ...(lp.grpc.healthAddress ? { health: lp.grpc.healthAddress } : {}),
      },
      close: () => lp.shutdown(),
    };
  },
});
