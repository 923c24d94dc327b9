/**
 * The 31 channel-scale choices of MetaPruning: 0.10, 0.13, ..., 1.00 (step 0.03).
 * Computed as (10 + 3i) / 100 in floating point, exactly as the reference does, so that
 * `Math.floor(max * scale)` gives the same channel counts as its `int(max * scale)`.
 */
export const SCALE_COUNT = 31;
export const SCALES: readonly number[] = Object.freeze(
  Array.from({ length: SCALE_COUNT }, (_, i) => (10 + 3 * i) / 100),
);
export const MAX_SCALE_ID = SCALE_COUNT - 1;

/** Channels kept by a layer of maximum width `max` at scale choice `id` (at least 1). */
export function channelsAt(max: number, id: number): number {
  return Math.max(1, Math.floor(max * (SCALES[id] as number)));
}

/** The largest scale choice not above `scale` (so uniform baselines never exceed their target). */
export function scaleIdAtMost(scale: number): number {
  let best = 0;
  for (let i = 0; i < SCALE_COUNT; i++) if ((SCALES[i] as number) <= scale + 1e-9) best = i;
  return best;
}
