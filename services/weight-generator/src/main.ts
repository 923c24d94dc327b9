#!/usr/bin/env node
/**
 * Process entry of the weight generator: the only place that reads flags and the
 * environment. Every setting is a flag (--nats-url) and an env variable (WEIGHTGEN_NATS_URL);
 * `--help` prints them with their defaults. Prints one JSON line on stdout once it serves
 * (`metaprune up` reads it; `health` is the plaintext health-only address when one is
 * configured). SIGTERM / SIGINT: health NOT_SERVING, the running training job checkpoints
 * and pauses (it resumes on the next start), in-flight calls finish, NATS drains, exit 0.
 */
import { runServiceMain } from '@metaprune/runtime';
import { CONFIG_SCHEMA, ENV_PREFIX } from './config.js';
import { startWeightGenerator } from './server.js';

runServiceMain({
  service: 'weight-generator',
  title: 'metaprune weight generator',
  envPrefix: ENV_PREFIX,
  schema: CONFIG_SCHEMA,
  graceMs: (config) => config.shutdownGrace + 5000,
  start: async (config, logger) => {
    const wg = await startWeightGenerator({ ...config, logger });
    return {
      announce: {
        address: wg.address,
        ...(wg.grpc.healthAddress ? { health: wg.grpc.healthAddress } : {}),
      },
      close: () => wg.shutdown(),
    };
  },
});
