import { describe, expect, it } from 'vitest';
import {
  absorbGeneration,
  bestPerBudget,
  buildNetwork,
  type Candidate,
  checkBudgetFeasible,
  costModel,
  crossover,
  type Encoding,
  type EvaluatorPool,
  type EvolutionState,
  fullEncoding,
  generateWithin,
  initialSearchState,
  mutate,
  type Outcome,
  paretoFront,
  proposeGeneration,
  Rng,
  randomEncoding,
  resolveEvolutionParams,
  runSearch,
  searchPareto,
  topK,
  withinBudget,
} from '../src/index.js';

describe('Rng', () => {
  it('is deterministic per seed, restorable from its state, and roughly uniform', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const seq = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(seq);
    const saved = a.state();
    const x = a.next();
    expect(new Rng(saved).next()).toBe(x);
    expect(new Rng(43).next()).not.toBe(new Rng(42).next());
    const counts = new Array(31).fill(0);
    const r = new Rng(1);
    for (let i = 0; i < 31_000; i++) counts[r.int(31)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });
});

describe('operators', () => {
  it('mutation with p=0 keeps, with p=1 changes every gene to another valid id', () => {
    const rng = new Rng(3);
    const parent = randomEncoding(40, rng);
    expect(mutate(parent, 0, rng)).toEqual(parent);
    const m = mutate(parent, 1, rng);
    m.forEach((g, i) => {
      expect(g).not.toBe(parent[i]);
      expect(g).toBeGreaterThanOrEqual(0);
      expect(g).toBeLessThanOrEqual(30);
    });
  });
  it('mutation rate is close to p', () => {
    const rng = new Rng(5);
    const parent = randomEncoding(10_000, rng);
    const changed = mutate(parent, 0.1, rng).filter((g, i) => g !== parent[i]).length;
    expect(changed / 10_000).toBeGreaterThan(0.09);
    expect(changed / 10_000).toBeLessThan(0.11);
  });
  it('crossover takes every gene from one of the parents, about half from each', () => {
    const rng = new Rng(7);
    const a = new Array(2000).fill(1);
    const b = new Array(2000).fill(2);
    const c = crossover(a, b, rng);
    expect(c.every((g) => g === 1 || g === 2)).toBe(true);
    const fromA = c.filter((g) => g === 1).length;
    expect(fromA).toBeGreaterThan(900);
    expect(fromA).toBeLessThan(1100);
  });
  it('topK is best first and stable', () => {
    expect(topK([3, 9, 1, 9, 5], 3, (x) => x)).toEqual([9, 9, 5]);
    const items = [
      { n: 'a', s: 1 },
      { n: 'b', s: 1 },
    ];
    expect(topK(items, 1, (x) => x.s)[0]!.n).toBe('a');
  });
  it('generation-time rejection is bounded', () => {
    let calls = 0;
    const r = generateWithin(
      () => {
        calls++;
        return [0];
      },
      () => false,
      17,
    );
    expect(r).toBeNull();
    expect(calls).toBe(17);
  });
  it('pareto front keeps exactly the non-dominated points', () => {
    const pts = [
      { cost: 1, score: 0.5 },
      { cost: 2, score: 0.4 }, // dominated by (1, .5)
      { cost: 3, score: 0.7 },
      { cost: 3, score: 0.6 }, // dominated
      { cost: 4, score: 0.9 },
    ];
    expect(paretoFront(pts)).toEqual([pts[0], pts[2], pts[4]]);
    // brute-force check on random points
    const rng = new Rng(11);
    const rand = Array.from({ length: 200 }, () => ({ cost: rng.int(50), score: rng.next() }));
    const front = new Set(paretoFront(rand));
    for (const p of rand) {
      const dominated = rand.some(
        (q) => q.cost <= p.cost && q.score >= p.score && (q.cost < p.cost || q.score > p.score),
      );
      expect(front.has(p)).toBe(!dominated);
    }
  });
});

describe('budgets', () => {
  const net = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });
  const model = costModel(net);
  const lo = model.cost(net.genes.map(() => 0));
  const hi = model.cost(fullEncoding(net));
  it('withinBudget respects every bound', () => {
    expect(withinBudget({ macs: 10, params: 5 }, { maxMacs: 10 })).toBe(true);
    expect(withinBudget({ macs: 11, params: 5 }, { maxMacs: 10 })).toBe(false);
    expect(withinBudget({ macs: 9, params: 5 }, { minMacs: 10 })).toBe(false);
    expect(withinBudget({ macs: 9, params: 5 }, { maxParams: 4 })).toBe(false);
    expect(withinBudget({ macs: 9, params: 5 }, { maxLatencyMs: 4 })).toBe(false);
    expect(withinBudget({ macs: 9, params: 5, latencyMs: 3 }, { maxLatencyMs: 4 })).toBe(true);
  });
  it('infeasible budgets are refused naming the field', () => {
    expect(() => checkBudgetFeasible({ maxMacs: lo.macs - 1 }, lo, hi)).toThrow(
      /budget.maxMacs: .* cannot be met/,
    );
    expect(() => checkBudgetFeasible({ minMacs: hi.macs + 1 }, lo, hi)).toThrow(/budget.minMacs/);
    expect(() => checkBudgetFeasible({ maxMacs: Number.NaN }, lo, hi)).toThrow(/budget.maxMacs/);
    expect(() => checkBudgetFeasible({ maxMacs: hi.macs / 2 }, lo, hi)).not.toThrow();
  });
  it('evolution parameters are validated naming the field', () => {
    expect(() => resolveEvolutionParams({ population: 0 })).toThrow(
      /evolution.population: 0 is out of range/,
    );
    expect(() => resolveEvolutionParams({ mutationProb: 2 })).toThrow(/evolution.mutationProb/);
    expect(resolveEvolutionParams({ population: 7 }).population).toBe(7);
  });
});

/** A synthetic objective with a known optimum under a MACs budget: more channels score higher. */
function syntheticPool(score: (e: Encoding) => number, log: string[]): EvaluatorPool {
  return {
    async evaluate(cands: readonly Candidate[]): Promise<Outcome[]> {
      return cands.map((c) => {
        log.push(c.encoding.join(','));
        return { top1: score(c.encoding) };
      });
    },
  };
}

describe('evolutionary search', () => {
  const net = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });
  const model = costModel(net);
  const full = model.macs(fullEncoding(net));
  const budgets = [{ maxMacs: full * 0.3 }, { maxMacs: full * 0.6 }];
  const costOf = (e: Encoding) => model.cost(e);
  const score = (e: Encoding) => model.macs(e) / full; // best = use the whole budget
  const params = resolveEvolutionParams({
    population: 20,
    generations: 6,
    keep: 20,
    parents: 5,
    mutants: 10,
    crossovers: 10,
    seed: 9,
  });

  it('never evaluates a candidate twice or one that breaks its budget, and improves', async () => {
    const log: string[] = [];
    const state = initialSearchState(net.genes.length, budgets, params);
    await runSearch(state, { costOf, pool: syntheticPool(score, log) });
    expect(new Set(log).size).toBe(log.length);
    for (const key of log) {
      const macs = model.macs(key.split(',').map(Number));
      expect(macs).toBeLessThanOrEqual(budgets[1]!.maxMacs);
    }
    const best = bestPerBudget(state);
    best.forEach((b, i) => {
      expect(b).not.toBeNull();
      expect(b!.cost.macs).toBeLessThanOrEqual(budgets[i]!.maxMacs);
    });
    // evolution beats its own first (random) generation and gets close to the budget
    expect(state.history.at(-1)!.best[0]!).toBeGreaterThan(state.history[0]!.best[0]!);
    expect(best[0]!.top1).toBeGreaterThan(0.27);
    const front = searchPareto(state);
    for (let i = 1; i < front.length; i++) {
      expect(front[i]!.cost.macs).toBeGreaterThan(front[i - 1]!.cost.macs);
      expect(front[i]!.top1).toBeGreaterThan(front[i - 1]!.top1);
    }
  });

  it('resumed from a JSON snapshot it proposes and finds exactly what an uninterrupted run does', async () => {
    const a = initialSearchState(net.genes.length, budgets, params);
    await runSearch(a, { costOf, pool: syntheticPool(score, []) });

    const b = initialSearchState(net.genes.length, budgets, params);
    let snapshot = '';
    const ac = new AbortController();
    await expect(
      runSearch(b, {
        costOf,
        pool: syntheticPool(score, []),
        signal: ac.signal,
        onGeneration: (s, st) => {
          snapshot = JSON.stringify(st);
          if (s.generation === 2) ac.abort();
        },
      }),
    ).rejects.toThrow();
    const restored = JSON.parse(snapshot) as EvolutionState;
    expect(restored.generation).toBe(3);
    await runSearch(restored, { costOf, pool: syntheticPool(score, []) });
    expect(bestPerBudget(restored)).toEqual(bestPerBudget(a));
    expect(restored.history).toEqual(a.history);
  });

  it('failed evaluations are recorded and not retried', async () => {
    const state = initialSearchState(
      net.genes.length,
      [budgets[1]!],
      resolveEvolutionParams({ ...params, generations: 1 }),
    );
    const cands = proposeGeneration(state, costOf);
    const outcomes: Outcome[] = cands.map((_, i) =>
      i === 0 ? { failed: 'worker crashed' } : { top1: 0.5 },
    );
    const summary = absorbGeneration(state, cands, outcomes);
    expect(summary.failed).toBe(1);
    expect(state.tested[cands[0]!.encoding.join(',')]).toMatchObject({
      top1: null,
      failed: 'worker crashed',
    });
  });
});
