/**
 * Starts an evaluator in this process: NATS, the pull worker and a health-only gRPC server
 * (NOT_SERVING until the worker is ready). `main.ts` wires it from configuration.
 */
import {
  connectNats,
  type GrpcServerHandle,
  type Logger,
  type NatsSecurity,
  nullLogger,
  startGrpcServer,
} from '@metaprune/runtime';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CandidateEvaluator, WeightSource } from './types.js';
import { EvaluatorWorker, type EvaluatorWorkerOptions } from './worker.js';

/** Health service name reported (besides the overall ''). */
export const EVALUATOR_HEALTH_NAME = 'metaprune.evaluation.v1.Evaluator';

export interface StartEvaluatorOptions
  extends Omit<EvaluatorWorkerOptions, 'nc' | 'logger' | 'evaluator' | 'weights'> {
  natsUrl: string;
  /** NATS user/password, token, nkey and TLS. */
  natsAuth?: NatsSecurity;
  evaluator: CandidateEvaluator;
  weights: WeightSource;
  healthHost?: string;
  /** 0 = any free port. */
  healthPort?: number;
  logger?: Logger;
}

export interface EvaluatorHandle {
  readonly worker: EvaluatorWorker;
  readonly health: GrpcServerHandle;
  /** host:port of the health server. */
  readonly address: string;
  readonly nc: NatsConnection;
  /**
   * Health NOT_SERVING, stop pulling, finish the current job within `drainTimeoutMs` or
   * hand it back, drain NATS, stop the health server. Idempotent.
   */
  close(drainTimeoutMs?: number): Promise<void>;
}

export async function startEvaluator(o: StartEvaluatorOptions): Promise<EvaluatorHandle> {
  const logger = o.logger ?? nullLogger;
  const health = await startGrpcServer({
    host: o.healthHost ?? '127.0.0.1',
    port: o.healthPort ?? 0,
    services: [],
    logger,
  });
  health.health.setAll('NOT_SERVING');
  health.health.set(EVALUATOR_HEALTH_NAME, 'NOT_SERVING');
  let nc: NatsConnection | undefined;
  try {
    nc = await connectNats({
      servers: o.natsUrl,
      name: `evaluator-${process.pid}`,
      logger,
      waitOnFirstConnect: true,
      ...o.natsAuth,
    });
    const { natsUrl: _u, natsAuth: _a, healthHost: _h, healthPort: _p, ...workerOpts } = o;
    const worker = new EvaluatorWorker({ ...workerOpts, nc, logger });
    await worker.prepare();
    await o.evaluator.warmUp?.();
    worker.start();
    health.health.setAll('SERVING');
    const conn = nc;
    let closing: Promise<void> | undefined;
    return {
      worker,
      health,
      address: health.address,
      nc: conn,
      close(drainTimeoutMs = 10_000) {
        closing ??= (async () => {
          health.health.setAll('NOT_SERVING');
          await worker.stop(drainTimeoutMs);
          await conn.drain().catch(() => {});
          o.weights.close();
          await o.evaluator.close?.();
          await health.shutdown(1000);
        })();
        return closing;
      },
    };
  } catch (err) {
    await nc?.close().catch(() => {});
    await health.shutdown(100);
    throw err;
  }
}
