export { isPoisonCandidate, poisonHash, withPoisonCandidates } from './chaos.js';
export { EVALUATOR_CONFIG } from './config.js';
export * from './integrity.js';
export * from './protocol.js';
export {
  type CandidateEvaluator,
  type EvaluationInput,
  type EvaluationScore,
  type GeneratedWeights,
  PermanentEvaluationError,
  type WeightRequest,
  type WeightSource,
} from './types.js';
export { GrpcWeightSource, type GrpcWeightSourceOptions } from './weights.js';
export {
  EvaluatorWorker,
  type EvaluatorWorkerOptions,
  type JobEvent,
  type JobOutcome,
  type WorkerStats,
} from './worker.js';
