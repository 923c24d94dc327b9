#!/usr/bin/env node
/**
 * Process entry of the web console: the only place that reads flags and the environment.
 * Every setting is a flag (--controller) and an env variable (CONSOLE_CONTROLLER);
 * `--help` prints them with their defaults (see src/config.ts). Prints one JSON line
 * {"service":"console","url":...} when listening. SIGTERM / SIGINT: event streams end,
 * the server closes, NATS drains, exit 0.
 */
import { runServiceMain } from '@metaprune/runtime';
import { CONFIG_SCHEMA, ENV_PREFIX } from './config.js';
import { startConsole } from './server.js';

runServiceMain({
  service: 'console',
  title: 'metaprune web console',
  envPrefix: ENV_PREFIX,
  schema: CONFIG_SCHEMA,
  start: async (config, logger) => {
    const c = await startConsole({ ...config, logger });
    return { announce: { url: c.url, port: c.port }, close: () => c.close() };
  },
});
