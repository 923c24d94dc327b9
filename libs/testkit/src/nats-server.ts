import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';
import { freePort, onProcessExit, tempDir } from './util.js';

export interface NatsServerOptions {
  /** Enable JetStream (default true). */
  jetstream?: boolean;
  /** JetStream store directory; a temp dir (removed on stop/exit) when omitted. */
  storeDir?: string;
  /** Client port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /** Require this user/password from clients. */
  user?: string;
  pass?: string;
  /** Require this token from clients (exclusive with user/pass). */
  token?: string;
  /** Extra command-line arguments passed to nats-server (e.g. TLS flags). */
  extraArgs?: string[];
  /** How long to wait for the server to accept connections (default 20 000 ms). */
  startTimeoutMs?: number;
  /** Receives every log line of the server (stderr). */
  onLog?: (line: string) => void;
  /**
   * Run `[...launcher, nats-server, ...args]` instead, with stdin a pipe from this process
   * (e.g. the CLI's guardian, which ends the server when this process dies).
   */
  launcher?: string[];
}

export interface StopOptions {
  /** Keep a temp store dir so a later restart() finds the data (default false). */
  keepStore?: boolean;
  /** SIGKILL after this long if SIGTERM did not end the server (default 10 000 ms). */
  timeoutMs?: number;
}

export interface NatsServerHandle {
  /** nats://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** pid of the current server process (changes after restart). */
  readonly pid: number;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Graceful stop (SIGTERM, then SIGKILL after a timeout); removes a temp store dir. */
  stop(opts?: StopOptions): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL); for SIGKILL/SIGTERM/SIGINT/SIGQUIT waits for the process
   * to exit. The store is kept, so restart() finds the data.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and store dir (stopping it first if running). */
  restart(): Promise<void>;
  /** The last lines the server logged. */
  logs(): string[];
}

const SEARCH_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin', '/sbin', '/bin'];

/** Path of the nats-server binary ($NATS_SERVER_BIN, then PATH, then the usual sbin dirs). */
export function findNatsServer(
  env: NodeJS.ProcessEnv = process.env,
  searchDirs: readonly string[] = SEARCH_DIRS,
): string {
  const fromEnv = env['NATS_SERVER_BIN'];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file`);
  }
  const dirs = [...(env['PATH'] ?? '').split(delimiter).filter(Boolean), ...searchDirs];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(
    'nats-server not found (looked in $NATS_SERVER_BIN, PATH and ' +
      searchDirs.join(', ') +
      '). Install it with `apt-get install nats-server` (Debian/Ubuntu), or download it from ' +
      'https://github.com/nats-io/nats-server/releases and set NATS_SERVER_BIN to its path.',
  );
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const MAX_LOG_LINES = 400;
const TERMINATING = new Set<NodeJS.Signals>(['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT']);

/**
 * Spawns a real nats-server on 127.0.0.1 (JetStream on by default, file store in a temp dir)
 * and resolves once it accepts connections. The process is killed when this process exits.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const bin = findNatsServer();
  const jetstream = opts.jetstream ?? true;
  const ownStore = opts.storeDir === undefined;
  const store = ownStore ? tempDir('metaprune-nats-') : undefined;
  const storeDir = opts.storeDir ?? store!.path;
  mkdirSync(storeDir, { recursive: true });
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const lines: string[] = [];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let port = opts.port ?? 0;

  const unregisterExit = onProcessExit(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  const args = (p: number): string[] => {
    const a = ['-a', '127.0.0.1', '-p', String(p), '-n', `metaprune-test-${p}`];
    if (jetstream) a.push('-js', '-sd', storeDir);
    if (opts.user !== undefined) a.push('--user', opts.user, '--pass', opts.pass ?? '');
    if (opts.token !== undefined) a.push('--auth', opts.token);
    a.push(...(opts.extraArgs ?? []));
    return a;
  };

  const log = (line: string): void => {
    lines.push(line);
    if (lines.length > MAX_LOG_LINES) lines.shift();
    opts.onLog?.(line);
  };

  /** Spawns once on port `p`; resolves when ready, rejects (with `inUse`) if it exits early. */
  const spawnOnce = (p: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const launcher = opts.launcher ?? [];
      const proc = launcher.length
        ? spawn(launcher[0]!, [...launcher.slice(1), bin, ...args(p)], {
            stdio: ['pipe', 'pipe', 'pipe'],
          })
        : spawn(bin, args(p), { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdin?.on('error', () => {});
      (proc.stdin as { unref?: () => void } | null)?.unref?.();
      child = proc;
      let settled = false;
      let buffered = '';
      let addrInUse = false;
      const onData = (chunk: Buffer): void => {
        buffered += chunk.toString('utf8');
        let nl = buffered.indexOf('\n');
        while (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          log(line);
          if (/address already in use/i.test(line)) addrInUse = true;
          if (line.includes('Server is ready')) finish();
          nl = buffered.indexOf('\n');
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      exited = new Promise<void>((r) => proc.once('exit', () => r()));

      const timer = setTimeout(() => {
        fail(
          new Error(
            `nats-server did not accept connections on 127.0.0.1:${p} within ${startTimeoutMs} ms\n` +
              lines.slice(-20).join('\n'),
          ),
        );
        proc.kill('SIGKILL');
      }, startTimeoutMs);
      // Fallback readiness probe in case the log line changes between versions.
      const probe = setInterval(() => {
        const sock = connect({ host: '127.0.0.1', port: p });
        sock.once('data', (d) => {
          sock.destroy();
          if (d.toString('utf8').startsWith('INFO ')) finish();
        });
        sock.once('error', () => sock.destroy());
      }, 100);

      function cleanup(): void {
        clearTimeout(timer);
        clearInterval(probe);
      }
      function finish(): void {
        if (settled) return;
        settled = true;
        cleanup();
        resolve();
      }
      function fail(err: Error): void {
        if (settled) return;
        settled = true;
        cleanup();
        reject(err);
      }
      proc.once('error', (err) =>
        fail(new Error(`could not start ${bin}: ${err.message}`, { cause: err })),
      );
      proc.once('exit', (code, signal) => {
        const err = new Error(
          `nats-server exited during startup (code ${code}, signal ${signal}) on port ${p}\n` +
            lines.slice(-20).join('\n'),
        ) as Error & { addrInUse?: boolean };
        err.addrInUse = addrInUse;
        fail(err);
      });
    });

  const start = async (allowNewPort: boolean): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (port === 0) port = await freePort();
      try {
        await spawnOnce(port);
        return;
      } catch (err) {
        const inUse = (err as { addrInUse?: boolean }).addrInUse === true;
        if (inUse && allowNewPort && attempt < 5) {
          port = 0; // another process grabbed the port between freePort() and spawn
          continue;
        }
        throw err;
      }
    }
  };

  const isRunning = (): boolean =>
    child !== undefined && child.exitCode === null && child.signalCode === null;

  const killAndWait = async (signal: NodeJS.Signals, timeoutMs: number): Promise<void> => {
    if (!isRunning()) return;
    const proc = child!;
    proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), timeoutMs);
    });
    const done = await Promise.race([exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (done && isRunning()) {
      proc.kill('SIGKILL');
      await exited;
    }
  };

  try {
    await start(opts.port === undefined);
  } catch (err) {
    unregisterExit();
    if (store) await store.remove();
    throw err;
  }

  const handle: NatsServerHandle = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    storeDir,
    get pid() {
      return child?.pid ?? -1;
    },
    get running() {
      return isRunning();
    },
    async stop(stopOpts: StopOptions = {}) {
      await killAndWait('SIGTERM', stopOpts.timeoutMs ?? 10_000);
      if (store && !stopOpts.keepStore) await store.remove();
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (TERMINATING.has(signal)) await killAndWait(signal, 10_000);
      else if (isRunning()) child!.kill(signal);
    },
    async restart() {
      await killAndWait('SIGTERM', 10_000);
      mkdirSync(storeDir, { recursive: true });
      await start(false);
    },
    logs() {
      return [...lines];
    },
  };
  return handle;
}
