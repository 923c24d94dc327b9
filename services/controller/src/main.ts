#!/usr/bin/env node
/**
 * The controller process. Configuration: env `CONTROLLER_*` or flags (see config.ts, e.g.
 * `--port 50052 --nats-url nats://127.0.0.1:4222 --weight-generator 127.0.0.1:50051`);
 * `--help` lists them with their defaults. Prints one JSON line on stdout once it serves:
 * `{"service":"controller","address":"host:port"}`. SIGTERM / SIGINT: health NOT_SERVING,
 * in-flight calls finish, search runners stop (the searches stay RUNNING in KV and resume
 * on the next start), NATS drains, exit 0.
 */
import {
  ConfigError,
  createLogger,
  describeSettings,
  initTelemetry,
  loadConfig,
  natsSecurity,
  onShutdownSignals,
  parseFlags,
  serverTlsCredentials,
} from '@metaprune/runtime';
import { CONTROLLER_CONFIG } from './config.js';
import { startController } from './server.js';

const ENV_PREFIX = 'CONTROLLER_';

async function main(): Promise<void> {
  const { flags, positionals } = parseFlags(process.argv.slice(2), { booleans: ['help'] });
  if ('help' in flags) {
    const rows = describeSettings(CONTROLLER_CONFIG, { envPrefix: ENV_PREFIX });
    process.stdout.write(
      `metaprune controller\n\nusage: node dist/main.js [--flag value ...]\n\n${rows
        .map(
          (r) =>
            `  ${r.flag.padEnd(24)} ${r.env.padEnd(34)} default ${r.default}\n      ${r.doc} (${r.allowed})`,
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
  const cfg = loadConfig(CONTROLLER_CONFIG, { envPrefix: ENV_PREFIX, flags });
  const logger = createLogger({ service: 'controller', level: cfg.logLevel });
  // OTLP export only when OTEL_* variables configure it (docs/operations.md).
  const telemetry = initTelemetry({ serviceName: 'controller', logger });
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
  // `health`: the plaintext health-only address, when one is configured
  process.stdout.write(
    `${JSON.stringify({ service: 'controller', address: handle.address, ...(handle.grpc.healthAddress ? { health: handle.grpc.healthAddress } : {}) })}\n`,
  );
  onShutdownSignals(
    async () => {
      await handle.close(Math.max(1000, cfg.grace - 3000));
      await telemetry.shutdown();
    },
    { graceMs: cfg.grace, logger },
  );
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`controller: ${msg}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
