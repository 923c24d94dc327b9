import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type ConsoleHandle, startConsole } from '@metaprune/console';
import { createLogger, type LogLevel, redactNatsUrl } from '@metaprune/runtime';
import { DEFAULT_PORTS } from '@metaprune/wire';
import { num, parseFlags, str } from '../args.js';
import { UsageError } from '../errors.js';
import { natsUrlWithCredentials, secretsPath } from '../secrets.js';
import { metapruneHome, type Stack, stackFilePath, startStack } from '../stack.js';

export const upHelp = `metaprune up [--evaluators N] [--nats URL] [--home DIR] [--console-port P] [--log-level L] [--verbose]
  Starts the stack on this machine: nats-server with JetStream on a free loopback port
  (unless --nats names a server; nats://user:pass@host:port is accepted), the weight
  generator, the latency profiler, the controller (connected to it, for latency budgets) and N evaluator processes
  (default: one per core). Waits until every service reports SERVING, prints the endpoints
  and a line "ready", and writes them to <home>/stack.json so that \`metaprune search\`,
  \`train --remote\`, \`profile\` and \`latency\` find the stack without flags.
  Ctrl-C / SIGTERM shuts everything down cleanly.
  Secure by default: NATS requires one generated user per service (subject permissions),
  every mutating call needs the generated token, the console needs it for writes; all of
  them in <home>/secrets.json (0600). The NATS store persists in <home>/nats. A crashed
  service is restarted on its address (with backoff); the services end with \`up\`, even
  when it is killed.
  --home   checkpoints, exports, logs and stack.json (default $METAPRUNE_HOME or ~/.metaprune)
  --console-port  port of the web console (default ${DEFAULT_PORTS.console}; a free one if taken; 0 = any)`;

/** A service crashing more often than this within the window stops the stack. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 5 * 60_000;

export async function upCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    evaluators: { type: 'string' },
    nats: { type: 'string' },
    home: { type: 'string' },
    'console-port': { type: 'string' },
    'log-level': { type: 'string' },
    verbose: { type: 'boolean' },
  });
  const evaluators = num(
    v,
    'evaluators',
    { min: 1, max: 256, integer: true },
    availableParallelism(),
  )!;
  const natsUrl = str(v, 'nats');
  if (natsUrl !== undefined && !/^(nats|tls|wss?):\/\/./.test(natsUrl)) {
    throw new UsageError(`--nats: ${JSON.stringify(natsUrl)} is not a NATS URL (nats://host:port)`);
  }
  const logLevel = str(v, 'log-level', 'info')!;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new UsageError(
      `--log-level: unknown value "${logLevel}"; allowed debug, info, warn, error, silent`,
    );
  }
  const home = str(v, 'home') ?? metapruneHome();
  const verbose = v['verbose'] === true;
  process.stderr.write(
    `starting the stack (${evaluators} evaluator${evaluators > 1 ? 's' : ''})...\n`,
  );
  let stack: Stack;
  try {
    stack = await startStack({
      evaluators,
      ...(natsUrl ? { natsUrl } : {}),
      home,
      writeStackFile: true,
      persistNats: true,
      guardNats: true,
      stackFile: str(v, 'home') !== undefined ? stackFilePath(home) : stackFilePath(),
      logLevel,
      ...(verbose
        ? { onLine: (s: string, l: string) => process.stderr.write(`[${s}] ${l}\n`) }
        : {}),
    });
  } catch (err) {
    process.stderr.write(`metaprune up: ${(err as Error).message}\n`);
    return 1;
  }
  // the web console, in this process (a taken default port falls back to a free one)
  const consolePort = num(v, 'console-port', { min: 0, max: 65535, integer: true });
  const consoleLogger = createLogger({
    service: 'console',
    level: verbose ? (logLevel as LogLevel) : 'warn',
  });
  // the console's profiler page uploads browser-measured tables to the stack's profiler
  const profiler = stack.latencyProfiler?.address;
  let web: ConsoleHandle | undefined;
  for (const port of consolePort === undefined ? [DEFAULT_PORTS.console, 0] : [consolePort]) {
    try {
      web = await startConsole({
        port,
        controller: stack.controller.address,
        weightGenerator: stack.weightGenerator.address,
        ...(profiler ? { latencyProfiler: profiler } : {}),
        // the console's own NATS user: read-only subjects
        natsUrl: [
          stack.nats
            ? natsUrlWithCredentials(stack.nats.url, stack.secrets, 'console')
            : stack.natsUrl,
        ],
        exportRoot: join(stack.home, 'exports'),
        // writes through the console need the stack's token; only then does the console
        // lend its own (the same) token to the profiler and the weight generator
        accessToken: stack.secrets.token,
        registrationToken: stack.secrets.token,
        logger: consoleLogger,
      });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EADDRINUSE' || port === 0) {
        process.stderr.write(`metaprune up: the web console: ${(err as Error).message}\n`);
        await stack.stop();
        return 1;
      }
    }
  }
  const rows: [string, string][] = [
    // the server's plain address; the credentials are in secrets.json / the stack file
    ['nats', stack.nats ? stack.nats.url : redactNatsUrl(stack.natsUrl)],
    ['weight-generator', stack.weightGenerator.address],
    ...(stack.latencyProfiler
      ? [['latency-profiler', stack.latencyProfiler.address] as [string, string]]
      : []),
    ['controller', stack.controller.address],
    ...stack.evaluators.map((e, i): [string, string] => [
      `evaluator ${i + 1}`,
      `${e.address} (health)`,
    ]),
    ['console', web?.url ?? ''],
    ['stack file', str(v, 'home') !== undefined ? stackFilePath(home) : stackFilePath()],
    ['logs', `${home}/logs`],
    ['credentials', secretsPath(home)],
  ];
  for (const [k, val] of rows) console.log(`${k.padEnd(18)} ${val}`);
  console.log('ready');

  const services = () => [
    stack.weightGenerator,
    ...(stack.latencyProfiler ? [stack.latencyProfiler] : []),
    stack.controller,
    ...stack.evaluators,
  ];
  let exitCode = 0;
  let shuttingDown = false;
  const crashes = new Map<string, number[]>();
  const done = new Promise<void>((resolveDone) => {
    const shutdown = (why: string) => {
      if (shuttingDown) return;
      shuttingDown = true;
      process.stderr.write(`${why}: shutting down...\n`);
      void Promise.resolve(web?.close())
        .then(() => stack.stop())
        .then(() => {
          process.stderr.write('stopped\n');
          resolveDone();
        });
    };
    // A signal while shutting down (a second Ctrl-C) stops the services at once.
    const onSignal = (sig: NodeJS.Signals) => {
      if (!shuttingDown) return shutdown(sig);
      process.stderr.write(`${sig} again: killing the services\n`);
      for (const p of services()) void p.kill('SIGKILL');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // A service that dies on its own is reported; evaluators are restarted.
    const watch = (p: (typeof stack.evaluators)[number]) => {
      void p.exited.then(async ({ code, signal }) => {
        if (shuttingDown) return;
        process.stderr.write(
          `${p.name}${p.name === 'evaluator' ? ` ${p.index + 1}` : ''} exited (code ${code}, signal ${signal})\n`,
        );
        if (p.name === 'evaluator') {
          try {
            const again = await stack.addEvaluator();
            process.stderr.write(`evaluator restarted at ${again.address}\n`);
            watch(again);
          } catch (err) {
            process.stderr.write(`could not restart the evaluator: ${(err as Error).message}\n`);
          }
          return;
        }
        // other services: restarted on their port with a growing delay; a service that keeps
        // crashing (MAX_RESTARTS within RESTART_WINDOW_MS) stops the stack
        const now = Date.now();
        const recent = (crashes.get(p.name) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
        recent.push(now);
        crashes.set(p.name, recent);
        if (recent.length > MAX_RESTARTS) {
          exitCode = 1;
          shutdown(`${p.name} crashed ${recent.length} times within ${RESTART_WINDOW_MS / 1000} s`);
          return;
        }
        const delay = Math.min(1000 * 2 ** (recent.length - 1), 30_000);
        process.stderr.write(`restarting ${p.name} in ${delay / 1000} s\n`);
        await new Promise((r) => setTimeout(r, delay));
        if (shuttingDown) return;
        try {
          const again = await stack.restart(p.name as Exclude<typeof p.name, 'evaluator'>);
          process.stderr.write(`${p.name} restarted at ${again.address}\n`);
          watch(again);
        } catch (err) {
          exitCode = 1;
          shutdown(`could not restart ${p.name}: ${(err as Error).message}`);
        }
      });
    };
    for (const p of services()) watch(p);
  });
  await done;
  return exitCode;
}
