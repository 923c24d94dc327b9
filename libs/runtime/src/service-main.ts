/**
 * The process entry every service shares: flags and `<PREFIX>*` environment variables →
 * validated, frozen configuration (bad input: one line on stderr naming the setting and
 * what is allowed, exit 2), `--help` listing every setting with its default, logger,
 * telemetry (OTLP only when OTEL_* configures it), one JSON line on stdout once the
 * service serves, and graceful shutdown on SIGTERM / SIGINT. A service's `main.ts` says
 * only how to start it from its configuration.
 */
import {
  ConfigError,
  type ConfigSchema,
  describeSettings,
  type InferConfig,
  loadConfig,
  parseFlags,
} from './config.js';
import { onShutdownSignals } from './lifecycle.js';
import { createLogger, type Logger, type LogLevel } from './log.js';
import { initTelemetry } from './telemetry/init.js';

/** A started service, as its main needs it. */
export interface RunningService {
  /** Fields of the JSON line printed once it serves (`service` is added first). */
  announce: Record<string, unknown>;
  /** Graceful stop, run once on SIGTERM / SIGINT. */
  close(): Promise<void>;
}

export interface ServiceMainOptions<S extends ConfigSchema> {
  /** Name in logs, telemetry, the announce line and error messages: `controller`. */
  service: string;
  /** Title of `--help`: `metaprune controller`. */
  title: string;
  envPrefix: string;
  schema: S;
  start(config: InferConfig<S>, logger: Logger): Promise<RunningService>;
  /** Time the shutdown may take before the process exits 1 (default 10 s). */
  graceMs?: (config: InferConfig<S>) => number;
  /** Defaults to process.argv.slice(2). */
  argv?: readonly string[];
}

function helpText(title: string, schema: ConfigSchema, envPrefix: string): string {
  const rows = describeSettings(schema, { envPrefix });
  const flagWidth = Math.max(...rows.map((r) => r.flag.length)) + 2;
  const envWidth = Math.max(...rows.map((r) => r.env.length)) + 2;
  const lines = rows.map(
    (r) =>
      `  ${r.flag.padEnd(flagWidth)} ${r.env.padEnd(envWidth)} default ${r.default}\n      ${r.doc} (${r.allowed})`,
  );
  return `${title}\n\nusage: node dist/main.js [--flag value ...]\n\n${lines.join('\n')}\n`;
}

async function serve<S extends ConfigSchema>(o: ServiceMainOptions<S>): Promise<void> {
  const { flags, positionals } = parseFlags(o.argv ?? process.argv.slice(2), {
    booleans: ['help'],
  });
  if ('help' in flags) {
    process.stdout.write(helpText(o.title, o.schema, o.envPrefix));
    return;
  }
  if (positionals.length > 0) {
    throw new ConfigError([
      { key: 'argv', source: 'arguments', message: `unexpected argument ${positionals[0]}` },
    ]);
  }
  const config = loadConfig(o.schema, { envPrefix: o.envPrefix, flags });
  const level = (config as { logLevel?: LogLevel }).logLevel ?? 'info';
  const logger = createLogger({ service: o.service, level });
  const telemetry = initTelemetry({ serviceName: o.service, logger });
  const running = await o.start(config, logger);
  process.stdout.write(`${JSON.stringify({ service: o.service, ...running.announce })}\n`);
  const shutdown = onShutdownSignals(
    async () => {
      await running.close();
      await telemetry.shutdown();
    },
    { graceMs: o.graceMs?.(config) ?? 10_000, logger },
  );
  exitWithSupervisor(() => void shutdown.trigger('SIGTERM'), logger);
}

/** Env var a supervisor (`metaprune up`) sets when the child's stdin is a pipe from it. */
export const SUPERVISED_ENV = 'METAPRUNE_SUPERVISED';

/**
 * Under a supervisor, stdin is a pipe from it that it never writes: the kernel closes it
 * when the supervisor dies, however it dies (SIGKILL included), and the service shuts down
 * in order instead of living on as an orphan.
 */
function exitWithSupervisor(stop: () => void, logger: Logger): void {
  if (process.env[SUPERVISED_ENV] !== '1') return;
  let stopped = false;
  const gone = () => {
    if (stopped) return;
    stopped = true;
    logger.warn('the supervisor is gone (stdin closed): shutting down');
    stop();
  };
  process.stdin.on('end', gone);
  process.stdin.on('close', gone);
  process.stdin.on('error', gone);
  process.stdin.resume();
}

/** Runs a service process (see the module comment); never throws. */
export function runServiceMain<const S extends ConfigSchema>(o: ServiceMainOptions<S>): void {
  serve(o).catch((err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${o.service}: ${msg}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  });
}
