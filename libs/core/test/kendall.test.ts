/** Kendall's tau-b against hand-worked cases (checked against scipy.stats.kendalltau). */
import { describe, expect, it } from 'vitest';
import { kendallTau, kendallTauB } from '../src/index.js';

describe('kendallTauB', () => {
  it('counts concordant and discordant pairs (no ties)', () => {
    // pairs of (1..5) vs (3,1,2,5,4): discordant (1,2), (1,3), (4,5); the other 7 concordant
    const r = kendallTauB([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]);
    expect(r).toMatchObject({ concordant: 7, discordant: 3, tiesX: 0, tiesY: 0, pairs: 10 });
    expect(r.tau).toBeCloseTo(0.4, 12);
  });

  it('corrects for ties (tau-b)', () => {
    // (1,2,2,3) vs (1,3,2,2): C = 3, D = 1, one pair tied in x, one in y:
    // (3 - 1) / sqrt((6 - 1)(6 - 1)) = 0.4
    const r = kendallTauB([1, 2, 2, 3], [1, 3, 2, 2]);
    expect(r).toMatchObject({ concordant: 3, discordant: 1, tiesX: 1, tiesY: 1, pairs: 6 });
    expect(r.tau).toBeCloseTo(0.4, 12);
  });

  it('is 1 for the same order, -1 for the reverse, invariant to monotone maps', () => {
    const x = [0.1, 0.5, 0.2, 0.9, 0.7];
    expect(
      kendallTau(
        x,
        x.map((v) => v * v + 3),
      ),
    ).toBe(1);
    expect(
      kendallTau(
        x,
        x.map((v) => -v),
      ),
    ).toBe(-1);
  });

  it('is NaN for a constant sample or fewer than two points; refuses bad input', () => {
    expect(kendallTau([1, 2, 3], [5, 5, 5])).toBeNaN();
    expect(kendallTau([1], [2])).toBeNaN();
    expect(() => kendallTau([1, 2], [1])).toThrow(RangeError);
    expect(() => kendallTau([1, Number.NaN], [1, 2])).toThrow(RangeError);
  });
});
