export {
  type BenchSearchOptions,
  type BenchSearchResult,
  benchSearch,
  benchSearchWorkload,
  W2_NETWORK,
} from './bench/search.js';
export { searchJson } from './commands/search.js';
export { type MacsBudget, macsBudgets, uniformAtLeast } from './pipeline/budgets.js';
export { type ComparisonRow, comparisonTable } from './pipeline/compare.js';
export { demoConfig, type PipelineConfig } from './pipeline/config.js';
export { type DemoResult, runDemo } from './pipeline/demo.js';
export { type ExperimentResults, runExperiment } from './pipeline/experiment.js';
export { type ExperimentConfig, experimentConfig } from './pipeline/experiment-config.js';
export { writeReport } from './pipeline/report.js';
export { Reporter } from './pipeline/reporter.js';
export {
  controllerAddress,
  type FollowOptions,
  followSearch,
  searchClient,
  type TrainedPruningNet,
  trainOnStack,
} from './remote.js';
export {
  loadOrCreateSecrets,
  natsUrlWithCredentials,
  natsUsers,
  type StackSecrets,
  secretsPath,
} from './secrets.js';
export {
  metapruneHome,
  readStackFile,
  type ServiceName,
  type ServiceProcess,
  type Stack,
  type StackFile,
  type StackOptions,
  serviceMain,
  stackFilePath,
  startService,
  startStack,
} from './stack.js';
