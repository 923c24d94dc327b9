export { comparePredictions, type PredictionAgreement } from './compare.js';
export {
  artifactsOf,
  convertToInference,
  type ExportForm,
  FORMS,
  foldArtifacts,
  INFERENCE_RUNTIME,
  inferenceMetadata,
  kerasLayers,
  NotAnExportError,
  type RuntimeInfo,
  readTrainingForm,
  updateDeployedMetadata,
  writeInferenceForm,
} from './convert.js';
export { type ExportFormOptions, exportModel } from './export.js';
export {
  type Act,
  foldTrainingForm,
  type InferenceGraph,
  type InferenceOp,
  type KerasLayer,
  UnsupportedModelError,
} from './fold.js';
export { toGraphModel } from './graph-model.js';
export { type DeliveredOptions, type DeliveredTiming, measureDelivered } from './latency.js';
export { type DeployedModel, loadDeployedModel } from './load.js';
export { deployReadme, deployReadmeText } from './readme.js';
export { DeliveredRunner } from './runner.js';
