/**
 * @metaprune/latency-profiler — device registry, versioned per-device latency tables and
 * latency prediction over gRPC (latency.v1.LatencyProfilerService). Its client and wire
 * conversions are in @metaprune/wire.
 */
export { CONFIG_SCHEMA, defaultConfig, ENV_PREFIX, type LatencyProfilerConfig } from './config.js';
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
