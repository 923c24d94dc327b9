#!/usr/bin/env node
/**
 * The evaluator process (run one per core). Configuration: env `EVALUATOR_*` or flags (see
 * config.ts, e.g. `--nats-url nats://127.0.0.1:4222 --weight-generator 127.0.0.1:50051
 * --health-port 0`). Prints one JSON line on stdout once it pulls jobs:
 * `{"service":"evaluator","address":"<health host:port>"}`. SIGTERM / SIGINT: health
 * NOT_SERVING, stop pulling, finish the current job (or hand it back after --drain-timeout),
 * drain NATS, exit 0.
 */
import {
  ConfigError,
  clientTlsCredentials,
  createLogger,
  describeSettings,
  initTelemetry,
  loadConfig,
  natsSecurity,
  onShutdownSignals,
  parseFlags,
} from '@metaprune/runtime';
import { withPoisonCandidates } from './chaos.js';
import { EVALUATOR_CONFIG } from './config.js';
import { startEvaluator } from './server.js';
import { GrpcWeightSource } from './weights.js';

const ENV_PREFIX = 'EVALUATOR_';

async function main(): Promise<void> {
  const { flags, positionals } = parseFlags(process.argv.slice(2), { booleans: ['help'] });
  if ('help' in flags) {
    const rows = describeSettings(EVALUATOR_CONFIG, { envPrefix: ENV_PREFIX });
    process.stdout.write(
      `metaprune evaluator\n\nusage: node dist/main.js [--flag value ...]\n\n${rows
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
  const cfg = loadConfig(EVALUATOR_CONFIG, { envPrefix: ENV_PREFIX, flags });
  const logger = createLogger({ service: 'evaluator', level: cfg.logLevel });
  // OTLP export only when OTEL_* variables configure it (docs/operations.md).
  const telemetry = initTelemetry({ serviceName: 'evaluator', logger });
  const tls = clientTlsCredentials(cfg);
  // Loaded here only: importing the package must not load tfjs.
  const { createEngineEvaluator } = await import('./engine-evaluator.js');
  const evaluator = await createEngineEvaluator({
    backend: cfg.backend,
    dataRoot: cfg.dataRoot,
    logger,
  });
  const handle = await startEvaluator({
    natsUrl: cfg.natsUrl,
    natsAuth: natsSecurity(cfg),
    // fault injection for resilience tests only, off unless EVALUATOR_CHAOS_POISON_FRACTION > 0
    evaluator: withPoisonCandidates(evaluator, cfg.chaosPoisonFraction, logger),
    weights: new GrpcWeightSource({
      address: cfg.weightGenerator,
      credentials: tls.credentials,
      channelOptions: tls.options,
    }),
    healthHost: cfg.healthHost,
    healthPort: cfg.healthPort,
    ackWaitMs: cfg.ackWait,
    ...(cfg.heartbeat > 0 ? { heartbeatMs: cfg.heartbeat } : {}),
    maxAttempts: cfg.maxAttempts,
    ...(cfg.maxDeliver > 0 ? { maxDeliver: cfg.maxDeliver } : {}),
    pullExpiresMs: cfg.pullExpires,
    retryDelayMs: cfg.retryDelay,
    ...(cfg.id ? { id: cfg.id } : {}),
    logger,
  });
  process.stdout.write(
    `${JSON.stringify({ service: 'evaluator', address: handle.address, backend: evaluator.backend })}\n`,
  );
  onShutdownSignals(
    async () => {
      await handle.close(cfg.drainTimeout);
      await telemetry.shutdown();
    },
    { graceMs: cfg.grace, logger },
  );
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`evaluator: ${msg}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
