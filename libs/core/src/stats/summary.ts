/**
 * Small statistics of the fidelity study (issue 16): sample mean and standard deviation,
 * and the overlap of two rankings' top k.
 */

/** Mean and sample standard deviation (n - 1); sd is NaN for fewer than two values. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, sd: Number.NaN, n };
  const mean = xs.reduce((a, x) => a + x, 0) / n;
  if (n < 2) return { mean, sd: Number.NaN, n };
  const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
  return { mean, sd: Math.sqrt(ss / (n - 1)), n };
}

/**
 * How many of the k items ranked highest by `x` are also among the k ranked highest by
 * `y` (paired samples; ties broken by index, so the answer is deterministic). In [0, k].
 */
export function topKOverlap(x: readonly number[], y: readonly number[], k: number): number {
  if (x.length !== y.length) {
    throw new RangeError(`topKOverlap: samples of different lengths (${x.length}, ${y.length})`);
  }
  const top = (v: readonly number[]) =>
    new Set(
      v
        .map((s, i) => ({ s, i }))
        .sort((a, b) => b.s - a.s || a.i - b.i)
        .slice(0, k)
        .map((e) => e.i),
    );
  const a = top(x);
  let n = 0;
  for (const i of top(y)) if (a.has(i)) n++;
  return n;
}
