/**
 * The study's searches: the evolutionary search of @metaprune/core (`runSearch`, the
 * controller's own loop) over all MACs budgets at once, scored in this process by a
 * `Scorer` (one PruningNet snapshot, one proxy size). A unit file per search.
 */
import {
  type Budget,
  bestPerBudget,
  costModel,
  type EvaluatorPool,
  initialSearchState,
  type Network,
  resolveEvolutionParams,
  runSearch,
} from '@metaprune/core';
import { macsBudgets } from '../budgets.js';
import { bar, type Reporter } from '../reporter.js';
import type { Scorer } from './scorer.js';

export interface SearchUnit {
  snapshot: number;
  proxy: string;
  generations: number;
  population: number;
  seed: number;
  budgets: { fraction: number; maxMacs: number; minMacs: number }[];
  winners: ({ encoding: number[]; macs: number; params: number; top1: number } | null)[];
  evaluated: number;
  seconds: number;
  evalSeconds: number;
  history: { generation: number; evaluated: number; best: (number | null)[] }[];
}

export async function studySearch(o: {
  net: Network;
  scorer: Scorer;
  snapshot: number;
  fractions: number[];
  generations: number;
  population: number;
  seed: number;
  reporter: Reporter;
}): Promise<SearchUnit> {
  const model = costModel(o.net);
  const macs = macsBudgets(o.net, o.fractions);
  const budgets: Budget[] = macs.map((b) => ({ maxMacs: b.maxMacs, minMacs: b.minMacs }));
  const P = o.population;
  const params = resolveEvolutionParams({
    population: P,
    generations: o.generations,
    keep: P,
    parents: Math.max(2, Math.round(P / 5)),
    mutants: Math.round(P / 2),
    crossovers: Math.round(P / 2),
    // narrow budgets (12.5 % of the MACs) need many draws to land a random encoding
    maxAttemptsPerCandidate: 100_000,
    seed: o.seed,
  });
  const t0 = Date.now();
  const ev0 = o.scorer.evalSeconds;
  const pool: EvaluatorPool = {
    evaluate: async (cands) => {
      const tops = await o.scorer.score(
        cands.map((c) => c.encoding),
        (done) =>
          o.reporter.status(
            `search ${bar(done / cands.length)} generation ${state.generation + 1}/${o.generations} ${done}/${cands.length}`,
          ),
      );
      return tops.map((top1) => ({ top1 }));
    },
  };
  const state = initialSearchState(o.net.genes.length, budgets, params);
  await runSearch(state, {
    costOf: (e) => model.cost(e),
    pool,
    onGeneration: (s) =>
      o.reporter.line(
        `  generation ${s.generation + 1}: ${s.evaluated} scored, best ${s.best.map((b) => (b === null ? '--' : `${(100 * b).toFixed(1)}%`)).join(' | ')}`,
      ),
  });
  const winners = bestPerBudget(state).map((w) =>
    w
      ? { encoding: [...w.encoding], macs: w.cost.macs, params: w.cost.params, top1: w.top1 }
      : null,
  );
  return {
    snapshot: o.snapshot,
    proxy: o.scorer.size.name,
    generations: o.generations,
    population: P,
    seed: o.seed,
    budgets: macs.map((b) => ({ fraction: b.fraction, maxMacs: b.maxMacs, minMacs: b.minMacs })),
    winners,
    evaluated: Object.keys(state.tested).length,
    seconds: (Date.now() - t0) / 1000,
    evalSeconds: o.scorer.evalSeconds - ev0,
    history: state.history.map((h) => ({
      generation: h.generation,
      evaluated: h.evaluated,
      best: [...h.best],
    })),
  };
}
