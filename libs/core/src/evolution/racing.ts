/**
 * Racing (successive halving with confidence bounds) for the search proxy (issue 16):
 * score every candidate on a small slice of the held-out images, then only those that can
 * still enter the top k on the next, larger slice, and so on; the last rung is the full
 * proxy. "Can still enter" = its upper confidence bound is at least the k-th largest
 * lower bound of the candidates raced together (and at least `bar`, the k-th best score
 * already known at full fidelity, when given). The bounds are binomial (top-1 on n
 * images: standard error sqrt(p(1-p)/n), plus 1/n so a 0 % or 100 % score is not
 * certain); z widens them for the noise of BN recalibration on few batches.
 */

export interface RaceOptions {
  /** Candidates that must be finished (scored on the last rung). */
  readonly k: number;
  /** Half-width of the bounds in standard errors (default 2). */
  readonly z?: number;
  /** A score already known at full fidelity that a candidate must be able to reach. */
  readonly bar?: number;
}

/** Half-width of the confidence interval of a top-1 `p` measured on `n` images. */
export function top1HalfWidth(p: number, n: number, z = 2): number {
  if (!(n > 0)) return Number.POSITIVE_INFINITY;
  const q = Math.min(1, Math.max(0, p));
  return z * Math.sqrt((q * (1 - q)) / n) + 1 / n;
}

/**
 * Which of `scores` (top-1 on `images` images each) can still enter the top k: always at
 * least the k best; the others when their upper bound reaches the k-th largest lower
 * bound (and `bar`).
 */
export function raceKeep(scores: readonly number[], images: number, o: RaceOptions): boolean[] {
  const z = o.z ?? 2;
  const k = Math.max(1, Math.floor(o.k));
  if (scores.length <= k) return scores.map(() => true);
  const hw = scores.map((s) => top1HalfWidth(s, images, z));
  const lower = scores.map((s, i) => s - (hw[i] as number)).sort((a, b) => b - a);
  const cut = Math.max(lower[k - 1] as number, o.bar ?? Number.NEGATIVE_INFINITY);
  return scores.map((s, i) => s + (hw[i] as number) >= cut);
}

export interface RaceResult {
  /** Each candidate's score on the last rung it reached. */
  readonly scores: number[];
  /** Index of the last rung each candidate reached. */
  readonly rung: number[];
  /** Candidates scored on each rung. */
  readonly scored: number[];
}

/**
 * Races `n` candidates over `rungs` (held-out images per rung, rising; the last is the
 * full proxy). `scoreAt(r, ids)` scores the candidates `ids` on rung r.
 */
export async function runRace(
  n: number,
  rungs: readonly number[],
  scoreAt: (rung: number, ids: readonly number[]) => Promise<readonly number[]>,
  o: RaceOptions,
): Promise<RaceResult> {
  if (rungs.length === 0) throw new RangeError('runRace: at least one rung is required');
  const scores = new Array<number>(n).fill(Number.NaN);
  const rung = new Array<number>(n).fill(-1);
  const scored: number[] = [];
  let alive = Array.from({ length: n }, (_, i) => i);
  for (let r = 0; r < rungs.length && alive.length > 0; r++) {
    const s = await scoreAt(r, alive);
    alive.forEach((id, j) => {
      scores[id] = s[j] as number;
      rung[id] = r;
    });
    scored.push(alive.length);
    if (r === rungs.length - 1) break;
    const keep = raceKeep(
      alive.map((id) => scores[id] as number),
      rungs[r] as number,
      o,
    );
    alive = alive.filter((_, j) => keep[j]);
  }
  return { scores, rung, scored };
}

/**
 * One number per candidate that orders a race's outcome: candidates that went further
 * first, then by score (a score is in [0, 1]).
 */
export function raceOrderKey(r: RaceResult): number[] {
  return r.scores.map((s, i) => (r.rung[i] as number) * 2 + s);
}
