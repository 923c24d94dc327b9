import { hashSeed, mix32, Rng } from '@metaprune/data';
import { describe, expect, it } from 'vitest';

// Golden values from an independent Python implementation of the documented algorithm
// (murmur3 fmix32, the hashSeed tuple hash, sfc32 with 12 discarded outputs). They pin the
// streams across versions: a checkpoint resumed later must see the same batches.
describe('random', () => {
  it('mix32 and hashSeed match the reference implementation', () => {
    expect([mix32(0), mix32(1), mix32(0xdeadbeef)]).toEqual([0, 1364076727, 233162409]);
    expect(hashSeed()).toBe(2628190328);
    expect(hashSeed(0)).toBe(1572215577);
    expect(hashSeed(1, 2)).toBe(763328172);
    expect(hashSeed(2, 1)).toBe(1894041345);
    expect(hashSeed(-1)).toBe(2606407019);
    expect(hashSeed(2 ** 40 + 5)).toBe(3216463432);
    expect(() => hashSeed(0.5)).toThrow(RangeError);
  });

  it('sfc32 streams match the reference implementation', () => {
    const first5 = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 5 }, () => r.nextU32());
    };
    expect(first5(0)).toEqual([2869579085, 3375416310, 4043102729, 670738978, 3328860073]);
    expect(first5(42)).toEqual([122773080, 1460307607, 2565637498, 2815670724, 1726373245]);
    expect(first5(-7)).toEqual([2395001599, 494152589, 3892887031, 3980579669, 3570225864]);
  });

  it('next() is in [0, 1) and int(n) is in range and roughly uniform', () => {
    const r = new Rng(3);
    const counts = new Array<number>(7).fill(0);
    let sum = 0;
    let outOfRange = 0;
    for (let i = 0; i < 70_000; i++) {
      const f = r.next();
      if (!(f >= 0 && f < 1)) outOfRange++;
      sum += f;
      const k = r.int(7);
      counts[k]!++;
    }
    expect(outOfRange).toBe(0);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(70_000); // no index outside 0..6
    expect(sum / 70_000).toBeCloseTo(0.5, 2);
    // chi-square with 6 degrees of freedom; 22.5 is the 0.999 quantile.
    const chi2 = counts.reduce((s, c) => s + (c - 10_000) ** 2 / 10_000, 0);
    expect(chi2).toBeLessThan(22.5);
    expect(() => r.int(0)).toThrow(RangeError);
    for (let i = 0; i < 100; i++) {
      const v = r.intBetween(-3, 3);
      expect(v >= -3 && v <= 3).toBe(true);
    }
  });

  it('shuffle is a seeded permutation', () => {
    const a = new Rng(9).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i));
    const b = new Rng(9).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i));
    const c = new Rng(10).shuffle(Uint32Array.from({ length: 1000 }, (_, i) => i));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    // Not the identity, and the first element is spread out over seeds.
    const firsts = new Set<number>();
    for (let s = 0; s < 50; s++) {
      firsts.add(new Rng(s).shuffle(Uint32Array.from({ length: 10 }, (_, i) => i))[0]!);
    }
    expect(firsts.size).toBeGreaterThan(5);
  });
});
