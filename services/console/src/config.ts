/**
 * Settings of the web console. `src/main.ts` loads them from flags and the environment
 * (prefix CONSOLE_, e.g. CONSOLE_CONTROLLER or --controller); in-process callers pass them
 * to `startConsole`, where every setting left out takes its default. A backend left empty
 * is simply not shown: the console works with whatever part of the stack it is given.
 */
import {
  defineConfig,
  type InferConfig,
  LOG_LEVEL_SETTINGS,
  loadConfig,
  NATS_SECURITY_SETTINGS,
} from '@metaprune/runtime';
import { DEFAULT_PORTS } from '@metaprune/wire';

export const ENV_PREFIX = 'CONSOLE_';

export const CONFIG_SCHEMA = defineConfig({
  host: { type: 'string', default: '127.0.0.1', doc: 'interface the HTTP server listens on' },
  port: {
    type: 'int',
    default: DEFAULT_PORTS.console,
    min: 0,
    max: 65535,
    doc: 'HTTP port (0 = any free port)',
  },
  controller: {
    type: 'string',
    default: '',
    doc: 'host:port of the controller (searches); empty: no searches shown',
  },
  weightGenerator: {
    type: 'string',
    default: '',
    doc: 'host:port of the weight generator (PruningNets, exports); empty: none',
  },
  latencyProfiler: {
    type: 'string',
    default: '',
    doc: 'host:port of the latency profiler (devices, tables, browser uploads); empty: none',
  },
  natsUrl: {
    type: 'list',
    default: [],
    doc: 'NATS server URL(s), comma-separated: training jobs, queue depth, evaluators, evaluation rate; empty: none',
  },
  ...NATS_SECURITY_SETTINGS,
  exportRoot: {
    type: 'string',
    default: '',
    doc: "the weight generator's export root as seen from here (download links); empty: no downloads",
  },
  registrationToken: {
    type: 'string',
    secret: true,
    doc: 'bearer token the console sends with RegisterDevice when the profiler requires one',
  },
  accessToken: {
    type: 'string',
    secret: true,
    doc: 'when set, state-changing requests (export, device registration) need it in the x-metaprune-token header; the console uses its own credentials only for such callers',
  },
  allowedHosts: {
    type: 'list',
    default: [],
    doc: 'host names (besides localhost, 127.0.0.1, ::1 and the listen host) the console answers to; other Host headers get 421 (DNS rebinding)',
  },
  maxEventStreams: {
    type: 'int',
    default: 32,
    min: 1,
    max: 10_000,
    doc: 'most concurrent event streams (/api/events); more get 503',
  },
  poll: {
    type: 'duration',
    default: '1s',
    min: 100,
    max: 60_000,
    doc: 'how often searches, the queue and the devices are refreshed',
  },
  ...LOG_LEVEL_SETTINGS,
});

export type ConsoleConfig = InferConfig<typeof CONFIG_SCHEMA>;

/** The defaults of every setting (no environment or flags read). */
export function defaultConfig(): ConsoleConfig {
  return loadConfig(CONFIG_SCHEMA, { env: {}, flags: {} });
}
