import { costModel } from '../cost.js';
import type { Encoding } from '../encoding.js';
import type { CandidateCost } from '../evolution/budget.js';
import type { LatencyPredictor } from './predictor.js';

/** Linear-interpolated percentile (numpy's default) of `values`; `p` in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = ((s.length - 1) * Math.min(100, Math.max(0, p))) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (pos - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Interquartile range (p75 - p25). */
export function iqr(values: readonly number[]): number {
  return percentile(values, 75) - percentile(values, 25);
}

/**
 * The table constant: the least-absolute-deviations fit of `measured = layerSum + c` over a
 * few encodings, constrained to c >= 0. Unconstrained, that is the median of the residuals
 * (measured whole-network latency - sum of the layer terms); the median keeps one disturbed
 * measurement from moving it. The constant is the fixed overhead of a forward (handing the
 * input over, reading the logits back), which cannot be negative, yet small networks and
 * coarse (interpolated) grids can have rows that sum to more than the whole forward and a
 * negative median residual. The objective sum |r_i - c| is convex in c, so its minimum over
 * c >= 0 is the unconstrained minimum clipped to 0: max(0, median). Predictions are then
 * never below the layer sum (rows are >= 0), and such a table errs high, i.e. on the safe
 * side of a latency budget.
 */
export function fitLatencyConstant(
  samples: readonly { readonly measuredMs: number; readonly layerSumMs: number }[],
): number {
  if (samples.length === 0)
    throw new Error('fitting the latency constant needs at least one sample');
  return Math.max(0, median(samples.map((s) => s.measuredMs - s.layerSumMs)));
}

export interface LatencyErrorStats {
  /** Median of |predicted - measured| / measured, percent. */
  readonly medianAbsErrorPct: number;
  /** 95th percentile (linear interpolation) of the same, percent. */
  readonly p95AbsErrorPct: number;
  readonly maxAbsErrorPct: number;
  /** Median of (predicted - measured) / measured, percent: the bias. */
  readonly medianErrorPct: number;
  readonly encodings: number;
}

/** Prediction error over encodings whose latency was measured. */
export function latencyErrorStats(
  samples: readonly { readonly predictedMs: number; readonly measuredMs: number }[],
): LatencyErrorStats {
  const rel = samples.map((s) => (100 * (s.predictedMs - s.measuredMs)) / s.measuredMs);
  const abs = rel.map(Math.abs);
  return {
    medianAbsErrorPct: median(abs),
    p95AbsErrorPct: percentile(abs, 95),
    maxAbsErrorPct: abs.length ? Math.max(...abs) : Number.NaN,
    medianErrorPct: median(rel),
    encodings: samples.length,
  };
}

/**
 * `costOf` for the evolution with a latency budget: MACs and params from the compiled cost
 * model plus the predicted latency — all O(layers), no allocation besides the result.
 */
export function latencyCostOf(predictor: LatencyPredictor): (enc: Encoding) => CandidateCost {
  const costs = costModel(predictor.net);
  return (enc) => ({
    macs: costs.macs(enc),
    params: costs.params(enc),
    latencyMs: predictor.predict(enc),
  });
}
