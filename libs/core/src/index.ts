export { type Cost, CostModel, costModel, countCost, type LayerCost, layerCosts } from './cost.js';
export {
  type Encoding,
  formatEncoding,
  fullEncoding,
  geneChannels,
  parseEncoding,
  scaleOf,
  uniformEncoding,
  validateEncoding,
  widthOf,
} from './encoding.js';
export { ValidationError } from './errors.js';
export {
  type Budget,
  type CandidateCost,
  checkBudgetFeasible,
  describeBudget,
  withinBudget,
} from './evolution/budget.js';
export {
  crossover,
  encodingKey,
  generateWithin,
  mutate,
  pick,
  randomEncoding,
  topK,
} from './evolution/operators.js';
export { paretoFront, type TradeOff } from './evolution/pareto.js';
export {
  type RaceOptions,
  type RaceResult,
  raceKeep,
  raceOrderKey,
  runRace,
  top1HalfWidth,
} from './evolution/racing.js';
export {
  absorbGeneration,
  bestPerBudget,
  type Candidate,
  DEFAULT_EVOLUTION,
  type Evaluated,
  type EvaluatorPool,
  type EvolutionParams,
  type EvolutionState,
  type GenerationSummary,
  initialSearchState,
  isFinished,
  type Outcome,
  proposeGeneration,
  type RunOptions,
  resolveEvolutionParams,
  runSearch,
  searchPareto,
} from './evolution/search.js';
export {
  channelChoices,
  coarseChoices,
  fitLatencyConstant,
  iqr,
  LATENCY_LIMITS,
  type LatencyErrorStats,
  type LatencyGrid,
  type LatencyPlan,
  type LatencyPrediction,
  LatencyPredictor,
  type LatencyPredictorOptions,
  type LatencyRow,
  type LatencyTable,
  type LatencyUnit,
  type LayerLatency,
  latencyCostOf,
  latencyErrorStats,
  latencyPredictor,
  latencyUnits,
  median,
  networkFingerprint,
  type PlannedUnit,
  percentile,
  planLatencyTable,
  predictLatency,
  tiedChannels,
  validateLatencyTable,
} from './latency/index.js';
export { makeDivisible, roundHalfEven } from './networks/builder.js';
export {
  buildNetwork,
  FAMILIES,
  INPUT_SIZE_RANGE,
  type NetworkSpecInput,
  PRESETS,
  resolveSpec,
  sameSpec,
  WIDTH_RANGE,
} from './networks/registry.js';
export type {
  Activation,
  Block,
  Family,
  Gene,
  GeneKind,
  Layer,
  LayerKind,
  Network,
  NetworkSpec,
  Preset,
  Width,
} from './networks/types.js';
export { Rng } from './random.js';
export { channelsAt, MAX_SCALE_ID, SCALE_COUNT, SCALES, scaleIdAtMost } from './scales.js';
export { type KendallTau, kendallTau, kendallTauB } from './stats/kendall.js';
export { meanSd, topKOverlap } from './stats/summary.js';
