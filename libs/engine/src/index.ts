export {
  BACKEND_ENV,
  BACKEND_NAMES,
  type BackendInfo,
  type BackendName,
  BackendUnavailableError,
  type InitBackendOptions,
  initBackend,
  parseBackendName,
} from './backend/select.js';
export { benchRetrain, type RetrainBenchOptions } from './bench/retrain.js';
export {
  type BenchOptions,
  type BenchRecord,
  benchEval,
  benchNetwork,
  benchTrain,
  type EvalBenchOptions,
  syntheticSet,
  type TrainBenchOptions,
} from './bench/workloads.js';
export {
  CHECKPOINT_FORMAT,
  CheckpointError,
  type CheckpointManifest,
  type LoadedCheckpoint,
  loadCheckpoint,
  resolveCheckpoint,
  saveCheckpoint,
  type TrainPosition,
} from './checkpoint/checkpoint.js';
export * from './deploy/index.js';
export { BnStatsAccumulator, foldBatchNorm } from './evaluate/bn-stats.js';
export { collectImages, shareImageSet } from './evaluate/data.js';
export {
  type BnStats,
  type EvaluateOptions,
  type EvaluationResult,
  evaluateCandidate,
  type ImageSet,
  recalibrate,
} from './evaluate/evaluate.js';
export {
  type EvaluationSlice,
  EvaluatorPool,
  type EvaluatorPoolOptions,
} from './evaluate/pool.js';
export {
  type BatchNormTrainResult,
  BN_TRAIN,
  BN_TRAIN_GRAD,
  batchNormTrain,
  batchNormTrainOps,
} from './kernels/batchnorm.js';
export { CUSTOM_KERNELS, MISSING_KERNELS, registerMissingKernels } from './kernels/register.js';
export { useSimdKernels } from './kernels/simd.js';
export * from './latency/index.js';
export {
  type BuildPlainOptions,
  buildPlainModel,
  defaultPreprocess,
  type EpochSummary,
  type ExportOptions,
  evaluatePlain,
  exportPlainModel,
  fileLoadHandler,
  fileSaveHandler,
  type GeneratedWeightsOptions,
  type GradientMode,
  generatedPlainWeights,
  type InputPreprocess,
  type LoadedModel,
  learningRateAt,
  loadExportedModel,
  METADATA_FORMAT,
  type MetadataInput,
  MODEL_JSON,
  PlainGradients,
  type PlainLayerWeights,
  PlainModelError,
  type PlainModelMetadata,
  type PlainParamCounts,
  type PlainWeights,
  plainModelMetadata,
  plainParamCounts,
  plainWeightsByLayer,
  type RetrainData,
  type RetrainOptions,
  type RetrainOutput,
  type RetrainProgress,
  type RetrainResult,
  retrainPlain,
  SgdMomentum,
  useFastBatchNorm,
  WEIGHTS_FILE,
} from './plain/index.js';
export { forwardFolded, layerIndex } from './pruningnet/forward.js';
export { type PruningNetLayout, pruningNetParamCount } from './pruningnet/layout.js';
export {
  createPruningNet,
  type GeneratedCandidate,
  generateCandidate,
  PruningNet,
  type PruningNetOptions,
  sampleEncoding,
} from './pruningnet/pruningnet.js';
export { useGenKernels } from './pruningnet/wasm-gen.js';
export { LocalStepper, type Stepper } from './train/local.js';
export type { StepPhases } from './train/parallel.js';
export { ParallelStepper, type ParallelStepperOptions } from './train/parallel.js';
export { type LinearSchedule, linearDecay, linearOptim } from './train/schedule.js';
export {
  DEFAULT_CLASSIFIER_LR_SCALE,
  DEFAULT_LR,
  type EpochSummary as PruningNetEpochSummary,
  type TrainBatch,
  type TrainConfig,
  type TrainData,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  trainPruningNet,
} from './train/trainer.js';
