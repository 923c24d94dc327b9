/**
 * Starts a controller in this process: NATS (streams, KV buckets, result subscription),
 * the search manager (resuming unfinished searches) and the gRPC server. `main.ts` wires
 * it from configuration; tests and benches can call it directly.
 */
import type * as grpc from '@grpc/grpc-js';
import { controller } from '@metaprune/proto';
import {
  connectNats,
  type GrpcServerHandle,
  type Logger,
  NATS_NAMES,
  nullLogger,
  openKv,
  startGrpcServer,
} from '@metaprune/runtime';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { NatsProgressBus, SearchManager } from './manager.js';
import { NatsEvaluation } from './pool.js';
import { GrpcPruningNets, type PruningNetResolver } from './pruningnets.js';
import { searchServiceImplementation } from './service.js';
import { KvMemoStore, KvSearchStore } from './store.js';

export interface StartControllerOptions {
  natsUrl: string;
  natsAuth?: { user?: string; pass?: string; token?: string };
  /** host:port of the weight generator (PruningNet look-ups). */
  weightGenerator: string;
  /** Overrides the gRPC resolver (e.g. a fixed set of PruningNets). */
  pruningnets?: PruningNetResolver;
  host?: string;
  port?: number;
  credentials?: grpc.ServerCredentials;
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
    ...(o.natsAuth?.user !== undefined
      ? { user: o.natsAuth.user, pass: o.natsAuth.pass ?? '' }
      : {}),
    ...(o.natsAuth?.token !== undefined ? { token: o.natsAuth.token } : {}),
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
  const pruningnets = o.pruningnets ?? new GrpcPruningNets(o.weightGenerator);
  const manager = new SearchManager({
    store: new KvSearchStore(searchesKv),
    pools: evaluation,
    pruningnets,
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
        implementation: searchServiceImplementation(manager, logger),
      },
    ],
    ...(o.credentials ? { credentials: o.credentials } : {}),
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
        evaluation.close();
        pruningnets.close?.();
        await nc.drain().catch(() => {});
      })();
      return closing;
    },
  };
}
