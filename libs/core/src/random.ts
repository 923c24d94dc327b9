/**
 * A small seeded PRNG (sfc32, 128-bit state) whose state can be saved and restored, so a
 * search restarted from its stored state draws exactly the same candidates.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | readonly [number, number, number, number]) {
    if (typeof seed === 'number') {
      this.a = 0x9e3779b9;
      this.b = 0x243f6a88;
      this.c = 0xb7e15162;
      this.d = seed >>> 0;
      for (let i = 0; i < 15; i++) this.next();
    } else {
      [this.a, this.b, this.c, this.d] = seed;
    }
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  state(): [number, number, number, number] {
    return [this.a, this.b, this.c, this.d];
  }
}
