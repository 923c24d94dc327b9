/**
 * @metaprune/console — the web console of the stack: live searches and training jobs,
 * Pareto plots, per-layer widths against the uniform network, devices and their latency
 * tables, downloads of exported models, and a browser latency profiler that uploads to the
 * latency profiler. `startConsole` runs it in-process; `dist/main.js` is the process entry.
 */
export { CONFIG_SCHEMA, type ConsoleConfig, defaultConfig, ENV_PREFIX } from './config.js';
export { listExports, resolveInsideRoot, tarHeader, writeTar } from './exports.js';
export { Hub, type HubOptions, type LayerGrid, type TableView } from './hub.js';
export {
  type ConsoleHandle,
  type ConsoleOptions,
  defaultWebRoot,
  startConsole,
} from './server.js';
export {
  type BestView,
  type BudgetView,
  budgetView,
  type CandidateView,
  candidateView,
  type DetailExtras,
  type DeviceView,
  describeNetwork,
  deviceView,
  type ExportView,
  formatMacs,
  isTerminalSearch,
  type LayerWidth,
  type Overview,
  type ProgressView,
  progressCount,
  progressView,
  type QueueView,
  RateMeter,
  type SearchDetail,
  type SearchSummary,
  type ServiceStatus,
  searchDetail,
  searchStateName,
  searchSummary,
  type TableSummaryView,
  type TrainingView,
  trainingStateName,
  trainingView,
  type UniformPoint,
  uniformCurve,
  type WidthsView,
  widthsView,
} from './views.js';
