/**
 * Graceful shutdown on SIGTERM / SIGINT: the handler runs once; the process exits 0 when it
 * finishes, 1 when it throws or the grace period passes; a second signal exits at once (1).
 */
import { type Logger, nullLogger } from './log.js';

export interface ShutdownOptions {
  /** Exit 1 if the handler has not finished after this long (default 10 000 ms). */
  graceMs?: number;
  /** Signals to handle (default SIGTERM and SIGINT). */
  signals?: NodeJS.Signals[];
  logger?: Logger;
  /** How to exit (default process.exit); tests inject their own. */
  exit?: (code: number) => void;
}

export type ShutdownHandler = (signal: NodeJS.Signals) => Promise<void> | void;

/**
 * Installs the signal handlers; returns a function that removes them. Also returns (as
 * `trigger`) a way to start the same shutdown from code, e.g. on a fatal error.
 */
export function onShutdownSignals(
  handler: ShutdownHandler,
  opts: ShutdownOptions = {},
): { dispose: () => void; trigger: (reason?: NodeJS.Signals) => Promise<void> } {
  const graceMs = opts.graceMs ?? 10_000;
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  const logger = opts.logger ?? nullLogger;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | undefined;
  let exited = false;

  const finish = (code: number): void => {
    if (exited) return;
    exited = true;
    exit(code);
  };

  const start = (signal: NodeJS.Signals): Promise<void> => {
    if (running) {
      logger.warn('second shutdown signal: exiting now', { signal });
      finish(1);
      return running;
    }
    logger.info('shutting down', { signal, graceMs });
    const timer = setTimeout(() => {
      logger.error('shutdown did not finish within the grace period: exiting', { graceMs });
      finish(1);
    }, graceMs);
    running = (async () => {
      try {
        await handler(signal);
        clearTimeout(timer);
        logger.info('shutdown complete');
        finish(0);
      } catch (err) {
        clearTimeout(timer);
        logger.error('shutdown failed', { err });
        finish(1);
      }
    })();
    return running;
  };

  const listener = (signal: NodeJS.Signals): void => {
    void start(signal);
  };
  for (const s of signals) process.on(s, listener);
  return {
    dispose: () => {
      for (const s of signals) process.off(s, listener);
    },
    trigger: (reason: NodeJS.Signals = 'SIGTERM') => start(reason),
  };
}
