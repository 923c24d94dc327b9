import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Paths removed (recursively, best effort) when the current process exits. */
const exitDirs = new Set<string>();
/** Callbacks run synchronously when the current process exits. */
const exitHooks = new Set<() => void>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const hook of exitHooks) {
      try {
        hook();
      } catch {
        // best effort at exit
      }
    }
    for (const dir of exitDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/** Registers a synchronous callback run at process exit; returns its unregister function. */
export function onProcessExit(hook: () => void): () => void {
  installExitHandler();
  exitHooks.add(hook);
  return () => {
    exitHooks.delete(hook);
  };
}

/** A free TCP port on 127.0.0.1 (the OS picks it; it is released before returning). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error(`could not determine a free port on ${host}`));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

export interface TempDir {
  /** Absolute path of the directory. */
  readonly path: string;
  /** Removes the directory and its contents (idempotent). */
  remove(): Promise<void>;
}

/**
 * Creates a fresh directory under the OS temp dir. It is removed by `remove()` or, failing
 * that, when the process exits.
 */
export function tempDir(prefix = 'metaprune-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  installExitHandler();
  exitDirs.add(path);
  return {
    path,
    async remove() {
      await rm(path, { recursive: true, force: true });
      exitDirs.delete(path);
    },
  };
}

export interface WaitForOptions {
  /** Give up after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Delay between attempts (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message ("the evaluator to report SERVING"). */
  what?: string;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned) or the timeout
 * passes. A predicate that throws counts as "not yet"; the last error is quoted in the
 * timeout message.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const what = opts.what ?? 'condition';
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const suffix =
        lastError === undefined
          ? ''
          : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${suffix}`, {
        cause: lastError,
      });
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
