/** A point to trade off: lower cost and higher score are better. */
export interface TradeOff {
  readonly cost: number;
  readonly score: number;
}

/**
 * Non-dominated points (no other point has cost <= and score >= with one strict), sorted
 * by increasing cost. O(n log n): sort by cost, sweep keeping strictly rising scores.
 */
export function paretoFront<T extends TradeOff>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.cost - b.cost || b.score - a.score);
  const front: T[] = [];
  let best = Number.NEGATIVE_INFINITY;
  for (const p of sorted) {
    if (p.score > best) {
      front.push(p);
      best = p.score;
    }
  }
  return front;
}
