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
  runRace,
  runSearch,
  withinBudget,
} from '@metaprune/core';
import { macsBudgets } from '../budgets.js';
import { bar, type Reporter } from '../reporter.js';
import type { Scorer } from './scorer.js';

export interface SearchUnit {
  snapshot: number;
  /** Proxy size name, or the rungs of a race ("S>M>L"). */
  proxy: string;
  /** Candidates scored on each proxy size (one entry unless racing). */
  scoredPerRung: number[];
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
  /** One scorer: plain; several (rising sizes): racing over them (see core `runRace`). */
  scorers: Scorer[];
  /** Racing: candidates finished per budget and generation; bound width. */
  race?: { k: number; z: number };
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
  const evalSeconds = () => o.scorers.reduce((a, s) => a + s.evalSeconds, 0);
  const ev0 = evalSeconds();
  const progress = (done: number, total: number) =>
    o.reporter.status(
      `search ${bar(done / total)} generation ${state.generation + 1}/${o.generations} ${done}/${total}`,
    );
  const scoredPerRung = o.scorers.map(() => 0);
  // racing: scores finished on the last rung, per budget (the bar a newcomer must reach)
  const finished: number[][] = budgets.map(() => []);
  const last = o.scorers.length - 1;
  const pool: EvaluatorPool = {
    evaluate: async (cands) => {
      if (last === 0) {
        scoredPerRung[0]! += cands.length;
        const tops = await o.scorers[0]!.score(
          cands.map((c) => c.encoding),
          (d) => progress(d, cands.length),
        );
        return tops.map((top1) => ({ top1 }));
      }
      const k = o.race?.k ?? params.parents;
      const groups = new Map<number, number[]>();
      cands.forEach((c, i) => {
        const bi = budgets.findIndex((b) => withinBudget(c.cost, b));
        groups.set(bi, [...(groups.get(bi) ?? []), i]);
      });
      const out: { top1: number }[] = cands.map(() => ({ top1: Number.NaN }));
      for (const [bi, idx] of groups) {
        const known = [...(finished[bi] ?? [])].sort((a, b) => b - a);
        const r = await runRace(
          idx.length,
          o.scorers.map((s) => s.size.valImages),
          (rung, ids) => {
            scoredPerRung[rung]! += ids.length;
            return o.scorers[rung]!.score(ids.map((j) => cands[idx[j]!]!.encoding));
          },
          {
            k,
            z: o.race?.z ?? 2,
            ...(known.length >= k ? { bar: known[k - 1]! } : {}),
          },
        );
        idx.forEach((ci, j) => {
          out[ci] = { top1: r.scores[j]! };
          if (r.rung[j] === last) finished[bi]?.push(r.scores[j]!);
        });
      }
      return out;
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
    proxy: o.scorers.map((x) => x.size.name).join('>'),
    scoredPerRung,
    generations: o.generations,
    population: P,
    seed: o.seed,
    budgets: macs.map((b) => ({ fraction: b.fraction, maxMacs: b.maxMacs, minMacs: b.minMacs })),
    winners,
    evaluated: Object.keys(state.tested).length,
    seconds: (Date.now() - t0) / 1000,
    evalSeconds: evalSeconds() - ev0,
    history: state.history.map((h) => ({
      generation: h.generation,
      evaluated: h.evaluated,
      best: [...h.best],
    })),
  };
}
