import type { Cost } from '../cost.js';
import { ValidationError } from '../errors.js';

/** Constraints a candidate must meet; absent fields are unconstrained. */
export interface Budget {
  readonly maxMacs?: number;
  readonly minMacs?: number;
  readonly maxParams?: number;
  readonly minParams?: number;
  readonly maxLatencyMs?: number;
}

/** Cost of a candidate as the budget sees it; latency only when a predictor is configured. */
export interface CandidateCost extends Cost {
  readonly latencyMs?: number;
}

export function withinBudget(c: CandidateCost, b: Budget): boolean {
  if (b.maxMacs !== undefined && c.macs > b.maxMacs) return false;
  if (b.minMacs !== undefined && c.macs < b.minMacs) return false;
  if (b.maxParams !== undefined && c.params > b.maxParams) return false;
  if (b.minParams !== undefined && c.params < b.minParams) return false;
  if (b.maxLatencyMs !== undefined && (c.latencyMs === undefined || c.latencyMs > b.maxLatencyMs))
    return false;
  return true;
}

export function describeBudget(b: Budget): string {
  const parts: string[] = [];
  if (b.minMacs !== undefined) parts.push(`MACs>=${(b.minMacs / 1e6).toFixed(2)}M`);
  if (b.maxMacs !== undefined) parts.push(`MACs<=${(b.maxMacs / 1e6).toFixed(2)}M`);
  if (b.minParams !== undefined) parts.push(`params>=${(b.minParams / 1e6).toFixed(3)}M`);
  if (b.maxParams !== undefined) parts.push(`params<=${(b.maxParams / 1e6).toFixed(3)}M`);
  if (b.maxLatencyMs !== undefined) parts.push(`latency<=${b.maxLatencyMs}ms`);
  return parts.join(' ') || 'unconstrained';
}

/**
 * Rejects budgets no candidate can meet: `lo`/`hi` are the cost of the smallest and of the
 * full encoding (costs grow with every gene, so these bound every candidate).
 */
export function checkBudgetFeasible(
  b: Budget,
  lo: CandidateCost,
  hi: CandidateCost,
  field = 'budget',
): void {
  const bad = (k: keyof Budget, v: number | undefined, ok: boolean, range: string) => {
    if (v === undefined) return;
    if (!Number.isFinite(v) || v < 0)
      throw new ValidationError(`${field}.${k}`, `${v} must be a finite non-negative number`);
    if (!ok)
      throw new ValidationError(`${field}.${k}`, `${v} cannot be met by any candidate; ${range}`);
  };
  bad(
    'maxMacs',
    b.maxMacs,
    (b.maxMacs ?? 0) >= lo.macs,
    `the smallest candidate has ${lo.macs} MACs`,
  );
  bad(
    'minMacs',
    b.minMacs,
    (b.minMacs ?? 0) <= hi.macs,
    `the largest candidate has ${hi.macs} MACs`,
  );
  bad(
    'maxParams',
    b.maxParams,
    (b.maxParams ?? 0) >= lo.params,
    `the smallest candidate has ${lo.params} params`,
  );
  bad(
    'minParams',
    b.minParams,
    (b.minParams ?? 0) <= hi.params,
    `the largest candidate has ${hi.params} params`,
  );
  if (b.maxLatencyMs !== undefined) {
    bad(
      'maxLatencyMs',
      b.maxLatencyMs,
      lo.latencyMs === undefined || b.maxLatencyMs >= lo.latencyMs,
      `the smallest candidate takes ${lo.latencyMs} ms`,
    );
  }
  if (b.minMacs !== undefined && b.maxMacs !== undefined && b.minMacs > b.maxMacs) {
    throw new ValidationError(`${field}.minMacs`, `${b.minMacs} is above maxMacs ${b.maxMacs}`);
  }
}
