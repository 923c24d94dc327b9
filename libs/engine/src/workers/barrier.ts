/**
 * A reusable barrier for a fixed group of worker threads over a shared Int32Array:
 * slot 0 counts arrivals (monotonically), slot 1 is an abort flag. Each participant keeps
 * its own count of barriers passed; barrier b releases when slot 0 reaches parties * b.
 */
export const BARRIER_SLOTS = 2;

export class Barrier {
  private passed = 0;

  constructor(
    private readonly ctl: Int32Array,
    private readonly parties: number,
  ) {}

  /** Waits for every party; throws if another party aborted. */
  wait(): void {
    this.passed++;
    const target = this.parties * this.passed;
    const now = Atomics.add(this.ctl, 0, 1) + 1;
    if (now >= target) {
      Atomics.notify(this.ctl, 0);
      return;
    }
    for (;;) {
      if (Atomics.load(this.ctl, 1) !== 0) throw new Error('another worker failed; step aborted');
      const v = Atomics.load(this.ctl, 0);
      if (v >= target) return;
      Atomics.wait(this.ctl, 0, v, 1000);
    }
  }

  /** Tells every party to stop waiting (after a failure). */
  abort(): void {
    Atomics.store(this.ctl, 1, 1);
    Atomics.notify(this.ctl, 0);
  }
}
