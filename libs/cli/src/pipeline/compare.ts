/**
 * The comparison of searched winners against their uniform baselines, per budget: MACs,
 * params, proxy top-1 (PruningNet, sub-val) and retrained test top-1, and the delta.
 */
import type { Encoding } from '@metaprune/core';
import { human, table } from '../ui/table.js';
import { pct } from './reporter.js';

export interface ComparedModel {
  encoding: Encoding;
  macs: number;
  params: number;
  /** PruningNet-proxy top-1 on sub-val (NaN when not measured). */
  proxyTop1: number;
  /** Retrained top-1 on the test set. */
  testTop1: number;
  /** Directory of the exported model.json. */
  exported: string;
}

export interface ComparisonRow {
  network: string;
  budget: string;
  /** The budget's MACs bound. */
  maxMacs: number;
  searched: ComparedModel;
  uniform: ComparedModel & { scale: number };
  /** searched.testTop1 - uniform.testTop1. */
  delta: number;
}

const signedPts = (d: number) =>
  Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${(100 * d).toFixed(2)}` : '--';

/** The text table of `metaprune demo` / `experiment`. */
export function comparisonTable(rows: readonly ComparisonRow[]): string {
  return table(
    ['network', 'budget', 'method', 'MACs', 'params', 'proxy top-1', 'test top-1', 'delta (pts)'],
    rows.flatMap((r) => [
      [
        r.network,
        r.budget,
        `uniform ${r.uniform.scale.toFixed(2)}x`,
        human(r.uniform.macs),
        human(r.uniform.params),
        pct(r.uniform.proxyTop1),
        pct(r.uniform.testTop1, 2),
        '',
      ],
      [
        '',
        '',
        'MetaPruning',
        human(r.searched.macs),
        human(r.searched.params),
        pct(r.searched.proxyTop1),
        pct(r.searched.testTop1, 2),
        signedPts(r.delta),
      ],
    ]),
  );
}

/** The rows as JSON (for --json and the experiment's results file). */
export function comparisonJson(rows: readonly ComparisonRow[]): Record<string, unknown>[] {
  return rows.map((r) => ({
    network: r.network,
    budget: r.budget,
    maxMacs: r.maxMacs,
    uniform: { ...r.uniform, encoding: [...r.uniform.encoding] },
    searched: { ...r.searched, encoding: [...r.searched.encoding] },
    delta: r.delta,
  }));
}
