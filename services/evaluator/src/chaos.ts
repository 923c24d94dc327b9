/**
 * Fault injection for resilience tests — a chaos setting, OFF by default, never for
 * production (docs/operations.md, "Chaos settings").
 *
 * `EVALUATOR_CHAOS_POISON_FRACTION` (flag `--chaos-poison-fraction`), 0..1: a candidate whose
 * encoding hashes below this fraction is a *poison candidate*: evaluating it kills the
 * evaluator process with SIGKILL (as the kernel's OOM killer would) once its weights are
 * generated, every time and on every evaluator. The choice depends on the genes only, so the
 * same candidates are poison on every evaluator and across restarts, and a test can compute
 * which ones they are with `isPoisonCandidate`.
 */
import type { Encoding } from '@metaprune/core';
import type { Logger } from '@metaprune/runtime';
import type { CandidateEvaluator, EvaluationInput, EvaluationScore } from './types.js';

/** FNV-1a over the genes, mapped to [0, 1). */
export function poisonHash(encoding: Encoding): number {
  let h = 0x811c9dc5;
  for (const g of encoding) {
    // genes are small non-negative integers; mix all four bytes anyway
    for (let s = 0; s < 32; s += 8) {
      h ^= (g >>> s) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    h ^= 0xff; // gene separator
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

/** Whether `encoding` is a poison candidate under `fraction` (0 = none, 1 = all). */
export function isPoisonCandidate(encoding: Encoding, fraction: number): boolean {
  return fraction > 0 && poisonHash(encoding) < fraction;
}

/** What a poison candidate does to the process (SIGKILL of itself by default). */
export type Crash = () => void;

const killSelf: Crash = () => {
  process.kill(process.pid, 'SIGKILL');
};

/**
 * Wraps the evaluator so that poison candidates crash the process instead of being scored.
 * With `fraction` 0 it returns `inner` itself.
 */
export function withPoisonCandidates(
  inner: CandidateEvaluator,
  fraction: number,
  logger: Logger,
  crash: Crash = killSelf,
): CandidateEvaluator {
  if (!(fraction > 0)) return inner;
  logger.warn('CHAOS: poison candidates are on; this evaluator kills itself on them', {
    chaosPoisonFraction: fraction,
  });
  const wrapped: CandidateEvaluator = {
    async evaluate(input: EvaluationInput): Promise<EvaluationScore> {
      if (isPoisonCandidate(input.encoding, fraction)) {
        logger.error('CHAOS: poison candidate: killing this evaluator (SIGKILL)', {
          jobId: input.job.jobId,
          encoding: input.encoding.join(','),
        });
        crash();
        // SIGKILL does not return; a test's `crash` might
        return new Promise<never>(() => {});
      }
      return inner.evaluate(input);
    },
  };
  if (inner.warmUp) wrapped.warmUp = () => inner.warmUp!();
  if (inner.close) wrapped.close = () => inner.close!();
  return wrapped;
}
