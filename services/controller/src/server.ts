/**
 * Starts a controller in this process: NATS (streams, KV buckets, result subscription),
 * the search manager (resuming unfinished searches) and the gRPC server. `main.ts` wires
 * it from configuration; tests and benches can call it directly.
 */
import type * as grpc from '@grpc/grpc-js';
import { controller } from '@metaprune/proto';
import {
  clientTlsCredentials,
  connectNats,
  createMetrics,
  type GrpcServerHandle,
  jetStreamQueueLag,
  type Logger,
  type NatsSecurity,
  nullLogger,
  openKv,
  startGrpcServer,
  type TlsSettings,
} from '@metaprune/runtime';
import {
  GrpcPruningNets,
  JOBS_STREAM,
  KvMemoStore,
  NATS_NAMES,
  NatsEvaluation,
  type PruningNetResolver,
} from '@metaprune/wire';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { GrpcLatencyTables, type LatencyTableSource } from './latency.js';
import { NatsProgressBus, SearchManager } from './manager.js';
import { searchServiceImplementation } from './service.js';
import { KvSearchStore } from './store.js';

export interface StartControllerOptions {
  natsUrl: string;
  /** NATS user/password, token, nkey and TLS. */
  natsAuth?: NatsSecurity;
  /** host:port of the weight generator (PruningNet look-ups). */
  weightGenerator: string;
  /** Overrides the gRPC resolver (e.g. a fixed set of PruningNets). */
  pruningnets?: PruningNetResolver;
  /**
   * host:port of the latency profiler (tables of latency budgets). Unset: StartSearch
   * refuses budgets with maxLatencyMs (INVALID_ARGUMENT).
   */
  latencyProfiler?: string;
  /** Overrides the latency profiler (e.g. a fixed set of tables). */
  latency?: LatencyTableSource;
  host?: string;
  port?: number;
  credentials?: grpc.ServerCredentials;
  /** TLS of the calls to the weight generator and the latency profiler (default plaintext). */
  clientTls?: TlsSettings;
  /** Also serve health checking only, in plaintext, on this port (0 = any free). */
  healthPort?: number;
  /** Largest gRPC message in or out (default 32 MiB); larger → RESOURCE_EXHAUSTED. */
  maxMessageBytes?: number;
  /** When set, StartSearch and CancelSearch need `authorization: Bearer <token>`. */
  authToken?: string;
  stallCheckMs?: number;
  deadJobTimeoutMs?: number;
  maxConcurrentSearches?: number;
  logger?: Logger;
}

export interface ControllerHandle {
  readonly address: string;
  readonly port: number;
  readonly grpc: GrpcServerHandle;
  readonly manager: SearchManager;
  readonly nc: NatsConnection;
  readonly evaluation: NatsEvaluation;
  /** Ids of the searches resumed at start. */
  readonly resumed: readonly string[];
  /**
   * Health NOT_SERVING, stop taking calls, stop runners (searches stay resumable), drain
   * NATS. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startController(o: StartControllerOptions): Promise<ControllerHandle> {
  const logger = o.logger ?? nullLogger;
  const nc = await connectNats({
    servers: o.natsUrl,
    name: `controller-${process.pid}`,
    logger,
    waitOnFirstConnect: true,
    ...o.natsAuth,
  });
  const js = jetstream(nc);
  const [searchesKv, memoKv] = await Promise.all([
    openKv(js, NATS_NAMES.searchesBucket),
    openKv(js, NATS_NAMES.memoBucket),
  ]);
  const memo = new KvMemoStore(memoKv);
  const evaluation = new NatsEvaluation({
    nc,
    memo,
    logger,
    ...(o.stallCheckMs !== undefined ? { stallCheckMs: o.stallCheckMs } : {}),
    ...(o.deadJobTimeoutMs !== undefined ? { deadJobTimeoutMs: o.deadJobTimeoutMs } : {}),
  });
  await evaluation.start();
  // queue_lag / queue_in_flight gauges from the evaluators' consumer (no-op without telemetry)
  const stopQueueLag = createMetrics().observeQueueLag(
    jetStreamQueueLag(await jetstreamManager(nc), JOBS_STREAM, NATS_NAMES.evaluatorsConsumer),
  );
  const security = clientTlsCredentials(o.clientTls ?? {});
  const pruningnets =
    o.pruningnets ??
    new GrpcPruningNets(o.weightGenerator, security.credentials, undefined, security.options);
  const latency =
    o.latency ??
    (o.latencyProfiler ? new GrpcLatencyTables(o.latencyProfiler, { security }) : undefined);
  const manager = new SearchManager({
    store: new KvSearchStore(searchesKv),
    pools: evaluation,
    pruningnets,
    memo,
    ...(latency ? { latency } : {}),
    bus: new NatsProgressBus(nc),
    logger,
    ...(o.maxConcurrentSearches !== undefined
      ? { maxConcurrentSearches: o.maxConcurrentSearches }
      : {}),
  });
  const server = await startGrpcServer({
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    services: [
      {
        definition: controller.SearchServiceService,
        implementation: searchServiceImplementation(manager, logger, o.authToken || undefined),
      },
    ],
    ...(o.credentials ? { credentials: o.credentials } : {}),
    ...(o.healthPort !== undefined ? { healthPort: o.healthPort } : {}),
    ...(o.maxMessageBytes !== undefined ? { maxMessageBytes: o.maxMessageBytes } : {}),
    logger,
  });
  const resumed = await manager.resumeAll();
  if (resumed.length > 0) logger.info('resumed searches', { count: resumed.length, resumed });

  let closing: Promise<void> | undefined;
  return {
    address: server.address,
    port: server.port,
    grpc: server,
    manager,
    nc,
    evaluation,
    resumed,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        server.health.setAll('NOT_SERVING');
        await manager.close();
        await server.shutdown(graceMs);
        stopQueueLag();
        evaluation.close();
        pruningnets.close?.();
        latency?.close?.();
        await nc.drain().catch(() => {});
      })();
      return closing;
    },
  };
}
