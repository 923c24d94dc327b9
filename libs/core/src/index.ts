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
export { makeDivisible, roundHalfEven } from './networks/builder.js';
export {
  buildNetwork,
  FAMILIES,
  INPUT_SIZE_RANGE,
  type NetworkSpecInput,
  PRESETS,
  resolveSpec,
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
export { channelsAt, MAX_SCALE_ID, SCALE_COUNT, SCALES, scaleIdAtMost } from './scales.js';
