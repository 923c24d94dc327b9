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
export { type ControllerHandle, type StartControllerOptions, startController } from './server.js';
export { searchServiceImplementation } from './service.js';
export {
  ConflictError,
  KvSearchStore,
  MemorySearchStore,
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
} from './validate.js';
