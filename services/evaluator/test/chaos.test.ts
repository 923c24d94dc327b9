import { nullLogger } from '@metaprune/runtime';
import { describe, expect, it } from 'vitest';
import { isPoisonCandidate, poisonHash, withPoisonCandidates } from '../src/chaos.js';
import type { CandidateEvaluator, EvaluationInput } from '../src/types.js';

const encodings = Array.from({ length: 2000 }, (_, k) =>
  Array.from({ length: 12 }, (_, i) => (k * 7 + i * (k % 13)) % 30),
);

describe('chaos: poison candidates (EVALUATOR_CHAOS_POISON_FRACTION)', () => {
  it('picks a stable share of candidates by their genes only', () => {
    expect(poisonHash([1, 2, 3])).toBe(poisonHash([1, 2, 3]));
    expect(poisonHash([1, 2, 3])).not.toBe(poisonHash([3, 2, 1]));
    expect(poisonHash([1, 23])).not.toBe(poisonHash([12, 3]));
    for (const e of encodings) {
      const h = poisonHash(e);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(1);
    }
    expect(encodings.some((e) => isPoisonCandidate(e, 0))).toBe(false);
    expect(encodings.every((e) => isPoisonCandidate(e, 1))).toBe(true);
    const share = encodings.filter((e) => isPoisonCandidate(e, 0.15)).length / encodings.length;
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.2);
  });

  it('off (0) leaves the evaluator as it is; on, a poison candidate crashes instead of scoring', async () => {
    let scored = 0;
    const inner: CandidateEvaluator = {
      async evaluate() {
        scored++;
        return { top1: 0.5, loss: 1, images: 1, recalibrationMs: 0, validationMs: 0 };
      },
    };
    expect(withPoisonCandidates(inner, 0, nullLogger)).toBe(inner);
    let crashes = 0;
    const chaotic = withPoisonCandidates(inner, 0.15, nullLogger, () => {
      crashes++;
      throw new Error('crashed');
    });
    const input = (encoding: number[]) =>
      ({ job: { jobId: 'j' }, encoding }) as unknown as EvaluationInput;
    const poison = encodings.find((e) => isPoisonCandidate(e, 0.15))!;
    const healthy = encodings.find((e) => !isPoisonCandidate(e, 0.15))!;
    await expect(chaotic.evaluate(input(poison))).rejects.toThrow('crashed');
    expect([crashes, scored]).toEqual([1, 0]);
    expect((await chaotic.evaluate(input(healthy))).top1).toBe(0.5);
    expect([crashes, scored]).toEqual([1, 1]);
  });
});
