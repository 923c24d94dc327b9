/** How a layer is timed, and what a timing is (shared by measure.ts and context.ts). */

export interface TimingOptions {
  /** Untimed runs first (operator creation, caches). Default 2. */
  warmup?: number;
  /** Timed runs; the median and interquartile range are kept. Default 5. */
  repeats?: number;
}

export interface Timing {
  readonly medianMs: number;
  /** Interquartile range of the samples. */
  readonly spreadMs: number;
  readonly repeats: number;
  readonly samples: readonly number[];
}
