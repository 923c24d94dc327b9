#!/usr/bin/env node
/**
 * Process entry of the web console: the only place that reads flags and the environment.
 * Every setting is a flag (--controller) and an env variable (CONSOLE_CONTROLLER);
 * `--help` prints them with their defaults (see src/config.ts). Prints one JSON line
 * {"service":"console","url":...} when listening. SIGTERM / SIGINT: event streams end,
 * the server closes, NATS drains, exit 0.
 */
import {
  ConfigError,
  createLogger,
  describeSettings,
  initTelemetry,
  loadConfig,
  onShutdownSignals,
  parseFlags,
} from '@metaprune/runtime';
import { CONFIG_SCHEMA, ENV_PREFIX } from './config.js';
import { startConsole } from './server.js';

async function main(): Promise<void> {
  const { flags, positionals } = parseFlags(process.argv.slice(2), { booleans: ['help'] });
  if ('help' in flags) {
    const rows = describeSettings(CONFIG_SCHEMA, { envPrefix: ENV_PREFIX });
    process.stdout.write(
      `metaprune web console\n\nusage: node dist/main.js [--flag value ...]\n\n${rows
        .map(
          (r) =>
            `  ${r.flag.padEnd(22)} ${r.env.padEnd(30)} default ${r.default}\n      ${r.doc} (${r.allowed})`,
        )
        .join('\n')}\n`,
    );
    return;
  }
  if (positionals.length > 0) {
    throw new ConfigError([
      { key: 'argv', source: 'arguments', message: `unexpected argument ${positionals[0]}` },
    ]);
  }
  const config = loadConfig(CONFIG_SCHEMA, { envPrefix: ENV_PREFIX, flags });
  const logger = createLogger({ service: 'console', level: config.logLevel });
  // OTLP export only when OTEL_* variables configure it (docs/operations.md).
  const telemetry = initTelemetry({ serviceName: 'console', logger });
  const c = await startConsole({ ...config, logger });
  process.stdout.write(`${JSON.stringify({ service: 'console', url: c.url, port: c.port })}\n`);
  onShutdownSignals(
    async () => {
      await c.close();
      await telemetry.shutdown();
    },
    { graceMs: 10_000, logger },
  );
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`console: ${msg}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
