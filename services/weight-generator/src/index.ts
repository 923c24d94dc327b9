/**
 * @metaprune/weight-generator — trains PruningNets as resumable jobs, keeps their
 * versioned checkpoints, streams generated weights and exports plain pruned networks
 * (weightgen.v1.WeightGeneratorService). `startWeightGenerator` runs it in-process;
 * `dist/main.js` is the process entry. Importing this module does not load tfjs. Its client,
 * codecs and subjects are in @metaprune/wire.
 */
export { CONFIG_SCHEMA, defaultConfig, ENV_PREFIX, type WeightGeneratorConfig } from './config.js';
export { CheckpointCorruptError } from './errors.js';
export { decodeRecord, type JobRecord } from './jobs.js';
export { childEntry, ProcessExporter, ProcessTrainer, trainingProcessEntry } from './runner.js';
export {
  startWeightGenerator,
  type WeightGeneratorHandle,
  type WeightGeneratorOptions,
} from './server.js';
export { CheckpointStore, MANIFEST, type Manifest, type StoredVersion } from './store.js';
export type {
  Exporter,
  ExportRequest,
  LoadedPruningNet,
  NamedTensor,
  ResolvedTrainingConfig,
  Trainer,
  TrainerCheckpoint,
  TrainerHooks,
  TrainerOutcome,
  TrainerProgress,
  TrainerRequest,
  WeightEngine,
} from './types.js';
