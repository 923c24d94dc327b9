/**
 * @metaprune/wire — everything that crosses a process boundary, in one place: proto <->
 * domain converters (network spec, evaluation settings, latency tables), the JetStream
 * stream / subject / KV names and codecs of every cross-service message, and a typed client
 * per service. Services depend on this library, never on each other. Loads no tensor library.
 */
export { type CallOpts, iterate, unary } from './clients/call.js';
export { type SearchClient, searchClient } from './clients/controller.js';
export {
  type FetchPredictorOptions,
  fetchLatencyPredictor,
  type LatencyClientOptions,
  LatencyProfilerClient,
} from './clients/latency-profiler.js';
export {
  GrpcPruningNets,
  type PruningNetResolver,
  type ResolvedPruningNet,
  StaticPruningNets,
} from './clients/pruningnets.js';
export {
  type ConnectOptions,
  type FetchedWeights,
  fetchWeights,
  type WeightGeneratorClient,
  watchTraining,
  weightGeneratorClient,
} from './clients/weight-generator.js';
export {
  checkEvaluationSettings,
  DEFAULT_EVAL_BATCH_SIZE,
  DEFAULT_QUEUE_STREAMS,
  decodeJob,
  decodeResult,
  encodeJob,
  encodeResult,
  ensureEvaluationStreams,
  ensureResultsStream,
  evaluationEventSubject,
  evaluationJobId,
  failedResult,
  isJobId,
  JOBS_FILTER,
  JOBS_STREAM,
  type JobIdParts,
  jobSubject,
  lookupPendingJob,
  lookupResult,
  maxDeliveriesAdvisorySubject,
  type QueueStreamSettings,
  RESULTS_FILTER,
  RESULTS_STREAM,
  type ResolvedDataSplit,
  type ResolvedEvaluationSettings,
  resolveDataSplit,
  resolveEvaluationSettings,
  resultSubject,
} from './evaluation.js';
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
} from './evaluator-pool.js';
export {
  contentJobId,
  type ExpectedResult,
  expectedOf,
  isAccuracy,
  jobProblem,
  resultMsgId,
  resultProblem,
} from './integrity.js';
export {
  networkKeyString,
  tableFromProto,
  tableKeyString,
  tableToProto,
  wireField,
} from './latency-table.js';
export { KvMemoStore, type MemoEntry, MemoryMemoStore, type MemoStore } from './memo.js';
export { DEFAULT_PORTS, NATS_NAMES } from './names.js';
export {
  LATENCY_TABLES_BUCKET,
  NATS_ROLES,
  type NatsPermissions,
  type NatsRole,
  type NatsUser,
  natsAuthorizationBlock,
  natsPermissions,
} from './nats-permissions.js';
export {
  networkFromProto,
  type SpecDefaults,
  sameProtoSpec,
  specFromProto,
  specToProto,
} from './spec.js';
export { isTerminal, trainingSubject } from './training.js';
