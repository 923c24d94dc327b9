export { CONTROLLER_CONFIG } from './config.js';
export {
  compileLatencyTable,
  describeNetworkShape,
  GrpcLatencyTables,
  type HeldLatencyTable,
  type LatencyQuery,
  type LatencyTableRef,
  type LatencyTableSource,
  latencyTwin,
  profileCommandFor,
  type ResolvedLatencyTable,
  StaticLatencyTables,
} from './latency.js';
export {
  type LiveProgress,
  LocalProgressBus,
  NatsProgressBus,
  newSearchId,
  type ProgressBus,
  SearchManager,
  type SearchManagerOptions,
} from './manager.js';
export {
  InProcessPoolFactory,
  type InProcessScorer,
  jobIdOf,
  memoEntryOf,
  NatsEvaluation,
  type NatsEvaluationOptions,
  outcomeOf,
  type PoolContext,
  type PoolFactory,
  type PoolHooks,
} from './pool.js';
export {
  GrpcPruningNets,
  type PruningNetResolver,
  type ResolvedPruningNet,
  StaticPruningNets,
} from './pruningnets.js';
export { type ControllerHandle, type StartControllerOptions, startController } from './server.js';
export { searchServiceImplementation } from './service.js';
export {
  ConflictError,
  KvMemoStore,
  KvSearchStore,
  type MemoEntry,
  MemoryMemoStore,
  MemorySearchStore,
  type MemoStore,
  type SearchContext,
  type SearchRecord,
  type SearchStatus,
  type SearchStore,
  TERMINAL,
} from './store.js';
export {
  checkStartShape,
  type LatencyRequest,
  latencyRequestOf,
  MAX_LATENCY_MS,
  resolveBudgets,
  resolveEvolution,
  resolveSettings,
} from './validate.js';
