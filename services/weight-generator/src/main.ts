#!/usr/bin/env node
/**
 * Process entry of the weight generator: the only place that reads flags and the
 * environment. Every setting is a flag (--nats-url) and an env variable (WEIGHTGEN_NATS_URL);
 * `--help` prints them with their defaults. SIGTERM / SIGINT: health NOT_SERVING, the
 * running training job checkpoints and pauses (it resumes on the next start), in-flight
 * calls finish, NATS drains, exit 0.
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
import { startWeightGenerator } from './server.js';

async function main(): Promise<void> {
  const { flags, positionals } = parseFlags(process.argv.slice(2), { booleans: ['help'] });
  if ('help' in flags) {
    const rows = describeSettings(CONFIG_SCHEMA, { envPrefix: ENV_PREFIX });
    process.stdout.write(
      `metaprune weight generator\n\nusage: node dist/main.js [--flag value ...]\n\n${rows
        .map(
          (r) =>
            `  ${r.flag.padEnd(20)} ${r.env.padEnd(28)} default ${r.default}\n      ${r.doc} (${r.allowed})`,
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
  const logger = createLogger({ service: 'weight-generator', level: config.logLevel });
  // OTLP export only when OTEL_* variables configure it (docs/operations.md).
  const telemetry = initTelemetry({ serviceName: 'weight-generator', logger });
  const wg = await startWeightGenerator({ ...config, logger });
  // one line on stdout for whoever started us (metaprune up reads it); `health` is the
  // plaintext health-only address when one is configured
  process.stdout.write(
    `${JSON.stringify({ service: 'weight-generator', address: wg.address, ...(wg.grpc.healthAddress ? { health: wg.grpc.healthAddress } : {}) })}\n`,
  );
  onShutdownSignals(
    async () => {
      await wg.shutdown();
      await telemetry.shutdown();
    },
    { graceMs: config.shutdownGrace + 5000, logger },
  );
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`weight-generator: ${msg}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
