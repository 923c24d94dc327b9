#!/usr/bin/env node
/**
 * The evaluator process (run one per core). Configuration: env `EVALUATOR_*` or flags (see
 * config.ts, e.g. `--nats-url nats://127.0.0.1:4222 --weight-generator 127.0.0.1:50051
 * --health-port 0`). Prints one JSON line on stdout once it pulls jobs:
 * `{"service":"evaluator","address":"<health host:port>"}`. SIGTERM / SIGINT: health
 * NOT_SERVING, stop pulling, finish the current job (or hand it back after --drain-timeout),
 * drain NATS, exit 0.
 */
import { clientTlsCredentials, natsSecurity, runServiceMain } from '@metaprune/runtime';
import { withPoisonCandidates } from './chaos.js';
import { ENV_PREFIX, EVALUATOR_CONFIG } from './config.js';
import { startEvaluator } from './server.js';
import { GrpcWeightSource } from './weights.js';

runServiceMain({
  service: 'evaluator',
  title: 'metaprune evaluator',
  envPrefix: ENV_PREFIX,
  schema: EVALUATOR_CONFIG,
  graceMs: (cfg) => cfg.grace,
  start: async (cfg, logger) => {
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
    return {
      announce: { address: handle.address, backend: evaluator.backend },
      close: () => handle.close(cfg.drainTimeout),
    };
  },
});
