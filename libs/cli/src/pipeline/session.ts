/**
 * A pipeline run's lifetime: the local stack (`startStack`) and Ctrl-C. The first SIGINT /
 * SIGTERM aborts `signal` (the running phase cancels its remote work: CancelTraining,
 * CancelSearch, retraining processes killed), then the stack is stopped cleanly. A second
 * signal kills the services at once and exits 130.
 */
import { type Stack, type StackOptions, startStack } from '../stack.js';

export class InterruptedError extends Error {
  constructor(signal: string) {
    super(`interrupted (${signal})`);
    this.name = 'InterruptedError';
  }
}

export interface Session {
  readonly stack: Stack;
  /** Aborted on the first SIGINT / SIGTERM. */
  readonly signal: AbortSignal;
}

export interface SessionOptions extends StackOptions {
  /** Told when the stack is up, when it is stopping and on interrupts. */
  log?: (line: string) => void;
}

/** Throws the abort reason when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new InterruptedError('abort');
}

/** Runs `fn` with the stack up; always stops the stack afterwards (also on Ctrl-C). */
export async function withStack<T>(o: SessionOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const abort = new AbortController();
  let stack: Stack | undefined;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log(`\n${sig}: stopping (cancelling remote work, shutting the stack down)...`);
      abort.abort(new InterruptedError(sig));
      return;
    }
    log(`${sig} again: killing the services`);
    const s = stack;
    const procs = s ? [s.weightGenerator, s.controller, ...s.evaluators] : [];
    void Promise.all(procs.map((p) => p.kill('SIGKILL', 1000)))
      .then(() => s?.nats?.stop())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const t0 = Date.now();
    stack = await startStack(o);
    log(
      `stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s: nats ${stack.natsUrl}, weight generator ${stack.weightGenerator.address}, controller ${stack.controller.address}, ${stack.evaluators.length} evaluator(s); logs in ${stack.home}/logs`,
    );
    throwIfAborted(abort.signal);
    return await fn({ stack, signal: abort.signal });
  } finally {
    if (stack) {
      const t0 = Date.now();
      await stack.stop();
      log(`stack stopped (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
