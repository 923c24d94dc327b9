/** Racing: bounds, who survives a rung, and a whole race against a brute-force check. */
import { describe, expect, it } from 'vitest';
import {
  meanSd,
  raceKeep,
  raceOrderKey,
  runRace,
  top1HalfWidth,
  topKOverlap,
} from '../src/index.js';

describe('racing', () => {
  it('binomial half-width: z * sqrt(p(1-p)/n) + 1/n', () => {
    expect(top1HalfWidth(0.5, 100, 2)).toBeCloseTo(2 * 0.05 + 0.01, 12);
    expect(top1HalfWidth(1, 400, 2)).toBeCloseTo(1 / 400, 12);
  });

  it('keeps the k best and whoever can still reach them', () => {
    // n = 100: hw(0.9) = 2*0.03+0.01 = 0.07, so the 2nd lower bound is 0.80 - hw(0.8) = 0.71;
    // 0.65 + hw(0.65) = 0.65 + 0.1054 = 0.755 >= 0.71 stays, 0.5 + 0.11 = 0.61 goes
    const keep = raceKeep([0.9, 0.8, 0.65, 0.5], 100, { k: 2, z: 2 });
    expect(keep).toEqual([true, true, true, false]);
    // a known full-fidelity bar above every upper bound of the weak ones drops them
    expect(raceKeep([0.9, 0.8, 0.65, 0.5], 100, { k: 2, z: 2, bar: 0.8 })).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(raceKeep([0.1, 0.2], 10, { k: 3 })).toEqual([true, true]);
  });

  it('finishes the true top k and scores far fewer on the last rung', async () => {
    // true top-1 of 40 candidates; a rung of n images measures it within +-1/n
    const truth = Array.from({ length: 40 }, (_, i) => 0.5 + 0.01 * i);
    const rungs = [250, 1000, 4000];
    const calls: number[][] = [];
    const r = await runRace(
      truth.length,
      rungs,
      async (rung, ids) => {
        calls.push([...ids]);
        return ids.map((i) => (truth[i] as number) + ((i % 3) - 1) / (rungs[rung] as number));
      },
      { k: 5, z: 2 },
    );
    expect(calls[0]).toHaveLength(40);
    expect(r.scored[2]).toBeLessThan(40);
    const finished = r.rung.map((x, i) => (x === 2 ? i : -1)).filter((i) => i >= 0);
    for (const i of [35, 36, 37, 38, 39]) expect(finished).toContain(i);
    const key = raceOrderKey(r);
    expect(topKOverlap(key, truth, 5)).toBe(5);
    // every eliminated candidate's upper bound was below the cut at its rung (brute force)
    for (let i = 0; i < 40; i++) if (r.rung[i]! < 2) expect(truth[i]).toBeLessThan(truth[35]!);
  });
});

describe('meanSd, topKOverlap', () => {
  it('sample SD with n - 1 and overlap of top k', () => {
    const m = meanSd([1, 2, 3, 4]);
    expect(m.mean).toBe(2.5);
    expect(m.sd).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(Number.isNaN(meanSd([1]).sd)).toBe(true);
    expect(topKOverlap([5, 4, 3, 2, 1], [1, 2, 3, 4, 5], 2)).toBe(0);
    expect(topKOverlap([5, 4, 3, 2, 1], [5, 3, 4, 1, 2], 3)).toBe(3);
  });
});
