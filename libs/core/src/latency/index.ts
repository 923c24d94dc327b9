export {
  type LatencyPrediction,
  LatencyPredictor,
  type LatencyPredictorOptions,
  type LayerLatency,
  latencyPredictor,
  predictLatency,
} from './predictor.js';
export {
  fitLatencyConstant,
  iqr,
  type LatencyErrorStats,
  latencyCostOf,
  latencyErrorStats,
  median,
  percentile,
} from './stats.js';
export {
  channelChoices,
  coarseChoices,
  LATENCY_LIMITS,
  type LatencyGrid,
  type LatencyPlan,
  type LatencyRow,
  type LatencyTable,
  type LatencyUnit,
  latencyUnits,
  networkFingerprint,
  type PlannedUnit,
  planLatencyTable,
  tiedChannels,
  validateLatencyTable,
} from './table.js';
