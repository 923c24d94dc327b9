import type { Encoding } from '../encoding.js';
import type { Rng } from '../random.js';
import { SCALE_COUNT } from '../scales.js';

/**
 * Evolution operators of DESIGN 1.4 as pure functions of (inputs, rng). Shared widths are a
 * single gene, so "shared genes mutate / cross over together" holds by construction.
 */

export function randomEncoding(genes: number, rng: Rng, choices = SCALE_COUNT): number[] {
  return Array.from({ length: genes }, () => rng.int(choices));
}

/** Each gene moves with probability `prob` to a uniformly random *other* scale id. */
export function mutate(parent: Encoding, prob: number, rng: Rng, choices = SCALE_COUNT): number[] {
  return parent.map((g) => {
    if (rng.next() >= prob) return g;
    const other = rng.int(choices - 1);
    return other >= g ? other + 1 : other;
  });
}

/** Uniform crossover: each gene from `a` or `b` with probability 1/2. */
export function crossover(a: Encoding, b: Encoding, rng: Rng): number[] {
  return a.map((g, i) => (rng.next() < 0.5 ? g : (b[i] as number)));
}

/** Picks uniformly from a non-empty list. */
export function pick<T>(items: readonly T[], rng: Rng): T {
  if (items.length === 0) throw new Error('pick from an empty list');
  return items[rng.int(items.length)] as T;
}

/** The k items of highest score, best first; ties keep their input order (stable). */
export function topK<T>(items: readonly T[], k: number, score: (t: T) => number): T[] {
  return items
    .map((item, i) => ({ item, i, s: score(item) }))
    .sort((x, y) => y.s - x.s || x.i - y.i)
    .slice(0, Math.max(0, k))
    .map((x) => x.item);
}

/**
 * Draws from `make` until `accept` holds, at most `maxAttempts` times: candidates that break
 * the budget are rejected when generated, before any evaluation. Null when none was found.
 */
export function generateWithin(
  make: () => number[],
  accept: (e: Encoding) => boolean,
  maxAttempts: number,
): number[] | null {
  for (let i = 0; i < maxAttempts; i++) {
    const e = make();
    if (accept(e)) return e;
  }
  return null;
}

export function encodingKey(e: Encoding): string {
  return e.join(',');
}
