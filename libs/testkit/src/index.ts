export { syntheticLatencyTable } from './latency-table.js';
export {
  findNatsServer,
  type NatsServerHandle,
  type NatsServerOptions,
  type StopOptions,
  startNatsServer,
} from './nats-server.js';
export {
  freePort,
  onProcessExit,
  type TempDir,
  tempDir,
  type WaitForOptions,
  waitFor,
} from './util.js';
