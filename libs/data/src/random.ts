/**
 * Small, fast, seedable pseudo-random numbers, identical on every platform and run.
 *
 * Generator: **sfc32** (Chris Doty-Humphrey's "Small Fast Chaotic" generator, from
 * PractRand): 128 bits of state, 32-bit output, passes PractRand and BigCrush, period at
 * least 2^32 (the counter word) and about 2^127 on average. It needs only 32-bit integer
 * arithmetic (`Math.imul` is not even required), so it is exact in JavaScript.
 *
 * Seeding: the four state words are derived from the seed with the murmur3 32-bit
 * finaliser (`mix32`), the counter starts at 1, and 12 outputs are discarded, as PractRand
 * does, so that nearby seeds (0, 1, 2, ...) give unrelated streams.
 *
 * Independent streams (one per epoch, one per sample, one per purpose) are obtained by
 * hashing a tuple of integers with {@link hashSeed} instead of sharing one generator, so a
 * value never depends on how many numbers were drawn before it. That is what makes the
 * batch iterator resumable from any (epoch, step).
 */

const TWO_32 = 4294967296;

/** murmur3's 32-bit finaliser: a bijective avalanche mix of a 32-bit word. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes a tuple of safe integers (negative allowed, up to 2^53 in magnitude) into a
 * 32-bit seed. Order matters: `hashSeed(1, 2) !== hashSeed(2, 1)`.
 */
export function hashSeed(...parts: readonly number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    if (!Number.isSafeInteger(p))
      throw new RangeError(`seed parts must be safe integers, got ${p}`);
    const lo = p >>> 0;
    const hi = Math.floor(p / TWO_32) >>> 0;
    h = mix32(h ^ lo) + 0x9e3779b9;
    h = mix32(h ^ hi ^ 0x7f4a7c15) + 0x9e3779b9;
  }
  return mix32(h);
}

/** A seeded sfc32 generator. Not cryptographic. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** @param seed any safe integer; equal seeds give equal streams. */
  constructor(seed: number) {
    const s = hashSeed(seed);
    this.a = mix32(s ^ 0x9e3779b9);
    this.b = mix32(s ^ 0x243f6a88);
    this.c = mix32(s ^ 0xb7e15162);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / TWO_32;
  }

  /** Uniform integer in [0, n), without modulo bias. `n` must be in 1..2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_32) {
      throw new RangeError(`Rng.int: n must be an integer in 1..2^32, got ${n}`);
    }
    // Reject the top (2^32 mod n) values so every residue is equally likely.
    const limit = TWO_32 - (TWO_32 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % n;
    }
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  intBetween(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** Shuffles `array` in place (Fisher-Yates, uniform over permutations) and returns it. */
  shuffle<T extends { length: number; [i: number]: number }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i]!;
      array[i] = array[j]!;
      array[j] = tmp;
    }
    return array;
  }
}
