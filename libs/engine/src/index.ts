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
export {
  CheckpointError,
  type CheckpointManifest,
  type LoadedCheckpoint,
  loadCheckpoint,
  resolveCheckpoint,
  type TrainPosition,
} from './checkpoint/checkpoint.js';
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
  type InputPreprocess,
  type LoadedModel,
  learningRateAt,
  loadExportedModel,
  METADATA_FORMAT,
  type MetadataInput,
  MODEL_JSON,
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
export {
  createPruningNet,
  type GeneratedCandidate,
  generateCandidate,
  PruningNet,
  type PruningNetOptions,
  sampleEncoding,
} from './pruningnet/pruningnet.js';
export { LocalStepper, type Stepper } from './train/local.js';
export { ParallelStepper, type ParallelStepperOptions } from './train/parallel.js';
export {
  type EpochSummary as PruningNetEpochSummary,
  type TrainData,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  trainPruningNet,
} from './train/trainer.js';
