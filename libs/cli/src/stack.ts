/**
 * The local stack: nats-server (unless a URL is given), the weight generator, the latency
 * profiler, the controller and N evaluators as child processes
 * (`node services/<name>/dist/main.js`, configured by env), each awaited until its gRPC
 * health reports SERVING. Used by `metaprune up`, the
 * end-to-end tests and the W4 bench. The endpoints go to a stack file so other commands
 * find the controller without flags.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  createWriteStream,
  mkdirSync,
  readFileSync,
  rmSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SUPERVISED_ENV, waitForServing } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer } from '@metaprune/testkit';
import { type NatsRole, natsAuthorizationBlock } from '@metaprune/wire';
import {
  loadOrCreateSecrets,
  natsUrlWithCredentials,
  natsUsers,
  type StackSecrets,
} from './secrets.js';

export type ServiceName = 'weight-generator' | 'latency-profiler' | 'controller' | 'evaluator';

const PACKAGES: Record<ServiceName, string> = {
  'weight-generator': '@metaprune/weight-generator',
  'latency-profiler': '@metaprune/latency-profiler',
  controller: '@metaprune/controller',
  evaluator: '@metaprune/evaluator',
};

/** Path of a service's process entry (its package's dist/main.js). */
export function serviceMain(name: ServiceName): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve(PACKAGES[name])), 'main.js');
}

/** The built nats-guardian.js next to this package's entry (also from sources in tests). */
function guardianMain(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@metaprune/cli')), 'nats-guardian.js');
}

/** $METAPRUNE_HOME, else ~/.metaprune: stack file, logs, checkpoints, exports. */
export function metapruneHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['METAPRUNE_HOME'] || join(homedir(), '.metaprune'));
}

export interface StackFile {
  /** With the operator's credentials when the stack runs its own NATS (the file is 0600). */
  natsUrl: string;
  /** Bearer token of mutating RPCs (absent in files of older versions). */
  token?: string;
  controller: string;
  weightGenerator: string;
  /** gRPC address of the latency profiler (absent in files of older versions). */
  latencyProfiler?: string;
  evaluators: string[];
  /** pid of the `metaprune up` process. */
  pid: number;
  startedAt: string;
}

/** $METAPRUNE_STACK_FILE, else `<home>/stack.json`. */
export function stackFilePath(home?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (home === undefined && env['METAPRUNE_STACK_FILE'])
    return resolve(env['METAPRUNE_STACK_FILE']);
  return join(home ?? metapruneHome(env), 'stack.json');
}

/** The endpoints of the running stack, if `metaprune up` wrote them and is still alive. */
export function readStackFile(home?: string): StackFile | undefined {
  let file: StackFile;
  try {
    file = JSON.parse(readFileSync(stackFilePath(home), 'utf8')) as StackFile;
  } catch {
    return undefined;
  }
  try {
    process.kill(file.pid, 0);
  } catch {
    return undefined; // stale: its `up` is gone
  }
  return file;
}

export interface ServiceProcess {
  readonly name: ServiceName;
  readonly index: number;
  /** gRPC address (health only for evaluators). */
  readonly address: string;
  /** The JSON line it printed when ready (address, and e.g. the evaluator's backend). */
  readonly info: Readonly<Record<string, unknown>>;
  readonly pid: number;
  readonly running: boolean;
  /** Resolves when the process exits (code, signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines it wrote on stderr. */
  logs(): string[];
  /** Sends `signal` and waits for the exit; SIGKILL after `timeoutMs` (default 30 s). */
  kill(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

export interface StartServiceOptions {
  name: ServiceName;
  index?: number;
  env: Record<string, string>;
  /** Appends the process's stderr here. */
  logFile?: string;
  onLine?: (line: string) => void;
  startTimeoutMs?: number;
}

const MAX_LINES = 200;

/**
 * Spawns one service, reads its `{"service":..,"address":..}` line from stdout and waits
 * for SERVING. Rejects with its last log lines if it exits or times out first.
 */
export async function startService(o: StartServiceOptions): Promise<ServiceProcess> {
  const main = serviceMain(o.name);
  // stdin: a pipe this process never writes; when it dies (even by SIGKILL) the kernel
  // closes it and the service shuts down instead of living on (runtime's service-main)
  const child: ChildProcess = spawn(process.execPath, [main], {
    env: { ...process.env, ...o.env, [SUPERVISED_ENV]: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => {});
  (child.stdin as { unref?: () => void } | null)?.unref?.();
  const lines: string[] = [];
  let log: WriteStream | undefined;
  if (o.logFile) {
    mkdirSync(dirname(o.logFile), { recursive: true });
    log = createWriteStream(o.logFile, { flags: 'a' });
  }
  let errBuf = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log?.write(chunk);
    errBuf += chunk.toString('utf8');
    let nl = errBuf.indexOf('\n');
    while (nl >= 0) {
      const line = errBuf.slice(0, nl);
      errBuf = errBuf.slice(nl + 1);
      lines.push(line);
      if (lines.length > MAX_LINES) lines.shift();
      o.onLine?.(line);
      nl = errBuf.indexOf('\n');
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => {
      log?.end();
      r({ code, signal });
    }),
  );
  const label = `${o.name}${o.index !== undefined ? ` ${o.index + 1}` : ''}`;
  const tail = () => lines.slice(-15).join('\n');
  const timeoutMs = o.startTimeoutMs ?? 60_000;

  let info: Record<string, unknown> = {};
  const address = await new Promise<string>((resolveAddr, reject) => {
    let outBuf = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} did not start within ${timeoutMs} ms\n${tail()}`));
    }, timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      outBuf += chunk.toString('utf8');
      let nl = outBuf.indexOf('\n');
      while (nl >= 0) {
        const line = outBuf.slice(0, nl).trim();
        outBuf = outBuf.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { service?: string; address?: string };
          if (msg.address) {
            info = msg;
            clearTimeout(timer);
            resolveAddr(msg.address);
          }
        } catch {
          // not the ready line
        }
        nl = outBuf.indexOf('\n');
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(`${label} exited during start-up (code ${code}, signal ${signal})\n${tail()}`),
      );
    });
  });
  try {
    // a service with TLS reports its plaintext health-only address as `health`
    const probe = typeof info['health'] === 'string' ? info['health'] : address;
    await waitForServing(probe, { waitMs: timeoutMs });
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${label}: ${(err as Error).message}\n${tail()}`);
  }
  const proc: ServiceProcess = {
    name: o.name,
    index: o.index ?? 0,
    address,
    info,
    pid: child.pid ?? -1,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    exited,
    logs: () => [...lines],
    async kill(signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return proc;
}

export interface StackOptions {
  /** Evaluator processes (default 1). */
  evaluators?: number;
  /**
   * Keep the spawned nats-server's JetStream store in `<home>/nats` across restarts
   * (default: a temporary store, as tests want a fresh server).
   */
  persistNats?: boolean;
  /** Run the spawned nats-server under a guardian that ends it with this process (up). */
  guardNats?: boolean;
  /** Use this NATS server instead of spawning one. */
  natsUrl?: string;
  /** Checkpoints, exports, logs (default metapruneHome()). */
  home?: string;
  /** Write the stack file (default false; `metaprune up` does). */
  writeStackFile?: boolean;
  /** Where (default `<home>/stack.json`). */
  stackFile?: string;
  /**
   * Start the latency profiler and connect the controller to it, so that searches can
   * have latency budgets (default true).
   */
  latencyProfiler?: boolean;
  /** Extra env per service (e.g. { evaluator: { EVALUATOR_ACK_WAIT: '5s' } }). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  logLevel?: string;
  /** Every stderr line of every service. */
  onLine?: (service: string, line: string) => void;
  startTimeoutMs?: number;
}

export interface Stack {
  /**
   * URL of NATS; for a spawned server it carries the operator (admin) credentials, which
   * connectNats understands, so tests and pipelines connect with it as before.
   */
  readonly natsUrl: string;
  /** The generated secrets (NATS users, bearer token); see secrets.ts. */
  readonly secrets: StackSecrets;
  readonly nats: NatsServerHandle | undefined;
  readonly home: string;
  readonly weightGenerator: ServiceProcess;
  /** Undefined when started with `latencyProfiler: false`. */
  readonly latencyProfiler: ServiceProcess | undefined;
  readonly controller: ServiceProcess;
  readonly evaluators: ServiceProcess[];
  /** Starts (another) evaluator; it is added to `evaluators`. */
  addEvaluator(): Promise<ServiceProcess>;
  /**
   * Starts a crashed weight generator, latency profiler or controller again on the port it
   * had (killing it first if it still runs); replaces it in the stack.
   */
  restart(name: Exclude<ServiceName, 'evaluator'>): Promise<ServiceProcess>;
  /** Starts the controller again (after it was killed); replaces `controller`. */
  restartController(): Promise<ServiceProcess>;
  /** SIGTERM everything (evaluators, controller, latency profiler, weight generator, nats). */
  stop(): Promise<void>;
}

/** Brings the stack up; on any failure it stops what it started and rethrows. */
export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const home = resolve(o.home ?? metapruneHome());
  mkdirSync(join(home, 'logs'), { recursive: true });
  const logLevel = o.logLevel ?? 'info';
  const started: ServiceProcess[] = [];
  let nats: NatsServerHandle | undefined;
  const timeout = o.startTimeoutMs ?? 90_000;

  const launch = async (name: ServiceName, index: number, env: Record<string, string>) => {
    const p = await startService({
      name,
      index,
      env: { ...env, ...(o.env?.[name] ?? {}) },
      logFile: join(home, 'logs', `${name}${name === 'evaluator' ? `-${index + 1}` : ''}.log`),
      ...(o.onLine ? { onLine: (l: string) => o.onLine?.(name, l) } : {}),
      startTimeoutMs: timeout,
    });
    started.push(p);
    return p;
  };

  const secrets = loadOrCreateSecrets(home);
  try {
    let natsUrl = o.natsUrl;
    // a spawned server requires one user per service, with subject permissions
    let serverUrl = natsUrl;
    let natsAuth = (_prefix: string, _role: NatsRole): Record<string, string> => ({});
    if (!natsUrl) {
      const conf = join(home, 'nats.conf');
      writeFileSync(conf, natsAuthorizationBlock(natsUsers(secrets)), { mode: 0o600 });
      chmodSync(conf, 0o600);
      nats = await startNatsServer({
        jetstream: true,
        // ended with this process even when it is SIGKILLed (see nats-guardian.ts); not for
        // tests that SIGKILL the server itself (the guardian would die instead)
        ...(o.guardNats ? { launcher: [process.execPath, guardianMain()] } : {}),
        ...(o.persistNats ? { storeDir: join(home, 'nats') } : {}),
        extraArgs: ['-c', conf],
      });
      serverUrl = nats.url;
      natsUrl = natsUrlWithCredentials(nats.url, secrets, 'admin');
      natsAuth = (prefix, role) => ({
        [`${prefix}NATS_USER`]: secrets.nats[role].user,
        [`${prefix}NATS_PASS`]: secrets.nats[role].password,
      });
    }
    // mutating RPCs need the stack's token; in-process clients (pipelines, tests) send it
    // through METAPRUNE_TOKEN like the CLI does (this stack's, not one set for another)
    process.env['METAPRUNE_TOKEN'] = secrets.token;
    const wgEnv: Record<string, string> = {
      WEIGHTGEN_AUTH_TOKEN: secrets.token,
      ...natsAuth('WEIGHTGEN_', 'weight-generator'),
      WEIGHTGEN_PORT: '0',
      WEIGHTGEN_NATS_URL: serverUrl!,
      WEIGHTGEN_CHECKPOINT_ROOT: join(home, 'checkpoints'),
      WEIGHTGEN_EXPORT_ROOT: join(home, 'exports'),
      WEIGHTGEN_LOG_LEVEL: logLevel,
    };
    let weightGenerator = await launch('weight-generator', 0, wgEnv);
    const lpEnv: Record<string, string> = {
      LATENCY_PROFILER_REGISTRATION_TOKEN: secrets.token,
      ...natsAuth('LATENCY_PROFILER_', 'latency-profiler'),
      LATENCY_PROFILER_PORT: '0',
      LATENCY_PROFILER_NATS_URL: serverUrl!,
      LATENCY_PROFILER_LOG_LEVEL: logLevel,
    };
    let latencyProfiler =
      o.latencyProfiler === false ? undefined : await launch('latency-profiler', 0, lpEnv);
    const controllerEnv: Record<string, string> = {
      CONTROLLER_AUTH_TOKEN: secrets.token,
      ...natsAuth('CONTROLLER_', 'controller'),
      CONTROLLER_PORT: '0',
      CONTROLLER_NATS_URL: serverUrl!,
      CONTROLLER_WEIGHT_GENERATOR: weightGenerator.address,
      ...(latencyProfiler ? { CONTROLLER_LATENCY_PROFILER: latencyProfiler.address } : {}),
      CONTROLLER_LOG_LEVEL: logLevel,
    };
    const evaluatorEnv = (i: number) => ({
      ...natsAuth('EVALUATOR_', 'evaluator'),
      EVALUATOR_HEALTH_PORT: '0',
      EVALUATOR_NATS_URL: serverUrl!,
      EVALUATOR_WEIGHT_GENERATOR: weightGenerator.address,
      EVALUATOR_ID: `evaluator-${i + 1}`,
      EVALUATOR_LOG_LEVEL: logLevel,
    });
    let controller = await launch('controller', 0, controllerEnv);
    const n = o.evaluators ?? 1;
    const evaluators = await Promise.all(
      Array.from({ length: n }, (_, i) => launch('evaluator', i, evaluatorEnv(i))),
    );
    const file = o.stackFile ?? stackFilePath(home);
    const writeFile = () => {
      if (!o.writeStackFile) return;
      const content: StackFile = {
        natsUrl: natsUrl!,
        token: secrets.token,
        controller: controller.address,
        weightGenerator: weightGenerator.address,
        ...(latencyProfiler ? { latencyProfiler: latencyProfiler.address } : {}),
        evaluators: evaluators.map((e) => e.address),
        pid: process.pid,
        startedAt: new Date().toISOString(),
      };
      // it holds the operator's credentials: owner only
      writeFileSync(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
      chmodSync(file, 0o600);
    };
    writeFile();
    let stopping: Promise<void> | undefined;
    return {
      natsUrl,
      secrets,
      nats,
      home,
      get weightGenerator() {
        return weightGenerator;
      },
      get latencyProfiler() {
        return latencyProfiler;
      },
      get controller() {
        return controller;
      },
      evaluators,
      async addEvaluator() {
        const p = await launch('evaluator', evaluators.length, evaluatorEnv(evaluators.length));
        evaluators.push(p);
        writeFile();
        return p;
      },
      async restartController() {
        await controller.kill('SIGKILL');
        controller = await launch('controller', 0, controllerEnv);
        writeFile();
        return controller;
      },
      async restart(name) {
        // on the port it had: the other services and the stack file keep their addresses
        const portOf = (p: ServiceProcess) => p.address.split(':').pop()!;
        if (name === 'weight-generator') {
          await weightGenerator.kill('SIGKILL');
          wgEnv['WEIGHTGEN_PORT'] = portOf(weightGenerator);
          weightGenerator = await launch('weight-generator', 0, wgEnv);
          return weightGenerator;
        }
        if (name === 'latency-profiler' && latencyProfiler) {
          await latencyProfiler.kill('SIGKILL');
          lpEnv['LATENCY_PROFILER_PORT'] = portOf(latencyProfiler);
          latencyProfiler = await launch('latency-profiler', 0, lpEnv);
          return latencyProfiler;
        }
        if (name === 'controller') {
          await controller.kill('SIGKILL');
          controllerEnv['CONTROLLER_PORT'] = portOf(controller);
          controller = await launch('controller', 0, controllerEnv);
          return controller;
        }
        throw new Error(`cannot restart ${name}`);
      },
      stop() {
        stopping ??= (async () => {
          await Promise.all(evaluators.map((e) => e.kill('SIGTERM')));
          await controller.kill('SIGTERM');
          await latencyProfiler?.kill('SIGTERM');
          await weightGenerator.kill('SIGTERM');
          await Promise.all(started.map((p) => p.kill('SIGKILL')));
          await nats?.stop();
          if (o.writeStackFile) rmSync(file, { force: true });
        })();
        return stopping;
      },
    };
  } catch (err) {
    await Promise.all(started.map((p) => p.kill('SIGKILL')));
    await nats?.stop();
    throw err;
  }
}
