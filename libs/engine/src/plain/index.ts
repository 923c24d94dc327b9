export {
  type ExportOptions,
  exportPlainModel,
  fileLoadHandler,
  fileSaveHandler,
  type LoadedModel,
  loadExportedModel,
  METADATA_FORMAT,
  type MetadataInput,
  MODEL_JSON,
  type PlainModelMetadata,
  plainModelMetadata,
  WEIGHTS_FILE,
  withSoftmaxOutput,
} from './export.js';
export { useFastBatchNorm } from './fast-bn.js';
export { type GeneratedWeightsOptions, generatedPlainWeights } from './generated.js';
export {
  type BuildPlainOptions,
  buildPlainModel,
  INPUT_LAYER,
  INPUT_NORM_LAYER,
  INPUT_PAD_LAYER,
  INPUT_RESIZE_LAYER,
  type InputPreprocess,
  type PlainLayerWeights,
  PlainModelError,
  type PlainParamCounts,
  type PlainWeights,
  plainParamCounts,
  plainWeightsByLayer,
} from './model.js';
export {
  type GradientMode,
  type GradientsResult,
  PlainGradients,
  type StepBatch,
  type StepResult,
} from './step.js';
export {
  defaultPreprocess,
  type EpochSummary,
  evaluatePlain,
  learningRateAt,
  type RetrainData,
  type RetrainOptions,
  type RetrainOutput,
  type RetrainProgress,
  type RetrainResult,
  retrainPlain,
  SgdMomentum,
} from './train.js';
