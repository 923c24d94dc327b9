/**
 * @metaprune/latency-profiler — device registry, versioned per-device latency tables and
 * latency prediction over gRPC (latency.v1.LatencyProfilerService). Besides the service,
 * exports the client and the wire conversions other services and the CLI use.
 */
export {
  type FetchPredictorOptions,
  fetchLatencyPredictor,
  type LatencyClientOptions,
  LatencyProfilerClient,
} from './client.js';
export { CONFIG_SCHEMA, defaultConfig, ENV_PREFIX, type LatencyProfilerConfig } from './config.js';
export {
  networkKeyString,
  specFromProto,
  specToProto,
  tableFromProto,
  tableKeyString,
  tableToProto,
  wireField,
} from './convert.js';
export {
  type LatencyProfilerHandle,
  type LatencyProfilerOptions,
  startLatencyProfiler,
} from './server.js';
export {
  createLatencyProfilerService,
  DEVICE_NAME_PATTERN,
  type LatencyProfilerServiceOptions,
} from './service.js';
export {
  type DeviceRecord,
  type LatencyStore,
  NatsLatencyStore,
  TABLES_BUCKET,
  type TableRecord,
  type TableVersionRecord,
} from './store.js';
