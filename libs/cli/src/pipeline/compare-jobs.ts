/**
 * From a search's winners to retraining jobs and back to comparison rows: each winner and
 * its uniform baseline (equal or higher MACs) are retrained with the same recipe and seed;
 * an encoding needed by several rows is retrained once.
 */
import { join } from 'node:path';
import { encodingKey, type Network } from '@metaprune/core';
import type { MacsBudget } from './budgets.js';
import { uniformAtLeast } from './budgets.js';
import type { ComparisonRow } from './compare.js';
import type { RetrainRecipe } from './config.js';
import type { RetrainJob, RetrainOutcome } from './retrain-job.js';
import type { FoundCandidate } from './search.js';

export interface PlannedRow {
  budget: MacsBudget;
  winner: FoundCandidate;
  uniform: ReturnType<typeof uniformAtLeast>;
  searchedJob: string;
  uniformJob: string;
}

export interface ComparisonPlan {
  rows: PlannedRow[];
  jobs: RetrainJob[];
}

export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '');

/** A short tag of a network for paths and tables: `mobilenetv2-w0.5`. */
export function networkTag(net: Network): string {
  return `${net.spec.family}-w${net.spec.width}`;
}

export interface PlanOptions {
  net: Network;
  budgets: readonly MacsBudget[];
  /** Winner per budget (null: none found; that budget gets no row). */
  winners: readonly (FoundCandidate | null)[];
  recipe: RetrainRecipe;
  dataset: 'fashion-mnist';
  outDir: string;
  /** Recorded in every model.json. */
  metadata: Record<string, unknown>;
  /** Job / directory prefix, e.g. "mobilenetv2-w0.5/" (default the network tag). */
  prefix?: string;
}

export function planComparison(o: PlanOptions): ComparisonPlan {
  const prefix = o.prefix ?? networkTag(o.net);
  const jobs = new Map<string, RetrainJob>();
  const add = (
    enc: readonly number[],
    id: string,
    label: string,
    extra: Record<string, unknown>,
  ): string => {
    const encoding = [...enc];
    const key = encodingKey(encoding);
    const existing = [...jobs.values()].find((j) => encodingKey(j.encoding) === key);
    if (existing) return existing.id;
    jobs.set(id, {
      id,
      label,
      spec: o.net.spec,
      encoding,
      dataset: o.dataset,
      recipe: o.recipe,
      outDir: join(o.outDir, id),
      metadata: { ...o.metadata, ...extra },
    });
    return id;
  };
  const rows: PlannedRow[] = [];
  o.budgets.forEach((budget, i) => {
    const winner = o.winners[i];
    if (!winner) return;
    const uniform = uniformAtLeast(o.net, winner.macs);
    const b = slug(`${Math.round(budget.fraction * 100)}pct`);
    const searchedJob = add(winner.encoding, `${prefix}/${b}-metapruning`, `MP ${b}`, {
      role: 'metapruning',
      budget: budget.name,
      max_macs: budget.maxMacs,
      proxy_top1: winner.top1,
    });
    const uniformJob = add(
      uniform.encoding,
      `${prefix}/uniform-${uniform.scale.toFixed(2)}`,
      `uniform ${uniform.scale.toFixed(2)}`,
      { role: 'uniform', uniform_scale: uniform.scale },
    );
    rows.push({ budget, winner, uniform, searchedJob, uniformJob });
  });
  return { rows, jobs: [...jobs.values()] };
}

/** Comparison rows from the retrained outcomes (by job id) and the uniform proxies. */
export function comparisonRows(
  net: Network,
  plan: ComparisonPlan,
  outcomes: ReadonlyMap<string, RetrainOutcome>,
  uniformProxy: ReadonlyMap<string, number>,
): ComparisonRow[] {
  return plan.rows.map((r) => {
    const s = outcomes.get(r.searchedJob);
    const u = outcomes.get(r.uniformJob);
    if (!s || !u) throw new Error(`missing retraining result for ${r.budget.name}`);
    return {
      network: networkTag(net),
      budget: r.budget.name,
      maxMacs: r.budget.maxMacs,
      searched: {
        encoding: r.winner.encoding,
        macs: r.winner.macs,
        params: r.winner.params,
        proxyTop1: r.winner.top1,
        testTop1: s.test_top1,
        exported: s.exported,
      },
      uniform: {
        encoding: r.uniform.encoding,
        scale: r.uniform.scale,
        macs: r.uniform.cost.macs,
        params: r.uniform.cost.params,
        proxyTop1: uniformProxy.get(encodingKey(r.uniform.encoding)) ?? Number.NaN,
        testTop1: u.test_top1,
        exported: u.exported,
      },
      delta: s.test_top1 - u.test_top1,
    };
  });
}
