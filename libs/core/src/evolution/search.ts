import type { Encoding } from '../encoding.js';
import { ValidationError } from '../errors.js';
import { Rng } from '../random.js';
import { SCALE_COUNT } from '../scales.js';
import { type Budget, type CandidateCost, withinBudget } from './budget.js';
import {
  crossover,
  encodingKey,
  generateWithin,
  mutate,
  pick,
  randomEncoding,
  topK,
} from './operators.js';
import { paretoFront } from './pareto.js';

/** DESIGN 1.4; defaults are the reference's. */
export interface EvolutionParams {
  readonly population: number;
  readonly generations: number;
  /** Best candidates ever seen kept per budget. */
  readonly keep: number;
  readonly parents: number;
  readonly mutants: number;
  readonly crossovers: number;
  readonly mutationProb: number;
  /** Draws allowed per wanted candidate before giving up on filling the population. */
  readonly maxAttemptsPerCandidate: number;
  readonly seed: number;
}

export const DEFAULT_EVOLUTION: EvolutionParams = Object.freeze({
  population: 50,
  generations: 20,
  keep: 50,
  parents: 10,
  mutants: 25,
  crossovers: 25,
  mutationProb: 0.1,
  maxAttemptsPerCandidate: 200,
  seed: 0,
});

const LIMITS: Record<keyof EvolutionParams, [number, number, boolean]> = {
  population: [1, 10_000, true],
  generations: [1, 10_000, true],
  keep: [1, 10_000, true],
  parents: [1, 10_000, true],
  mutants: [0, 10_000, true],
  crossovers: [0, 10_000, true],
  mutationProb: [0, 1, false],
  maxAttemptsPerCandidate: [1, 1_000_000, true],
  seed: [0, 2 ** 32 - 1, true],
};

export function resolveEvolutionParams(
  p: Partial<EvolutionParams> = {},
  field = 'evolution',
): EvolutionParams {
  const out = {
    ...DEFAULT_EVOLUTION,
    ...Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)),
  };
  for (const [k, [min, max, int]] of Object.entries(LIMITS)) {
    const v = out[k as keyof EvolutionParams];
    if (
      typeof v !== 'number' ||
      !Number.isFinite(v) ||
      v < min ||
      v > max ||
      (int && !Number.isInteger(v))
    ) {
      throw new ValidationError(
        `${field}.${k}`,
        `${String(v)} is out of range; allowed ${int ? 'integers ' : ''}${min}..${max}`,
      );
    }
  }
  return Object.freeze(out);
}

export interface Candidate {
  readonly encoding: Encoding;
  readonly cost: CandidateCost;
}

export interface Evaluated extends Candidate {
  readonly top1: number;
}

/** Result of evaluating one candidate: a score, or a failure that is recorded, not retried. */
export type Outcome = { readonly top1: number } | { readonly failed: string };

/** Where candidates are scored: in-process for tests, a NATS evaluator pool in production. */
export interface EvaluatorPool {
  evaluate(candidates: readonly Candidate[], signal?: AbortSignal): Promise<Outcome[]>;
}

export interface GenerationSummary {
  readonly generation: number;
  readonly proposed: number;
  readonly evaluated: number;
  readonly failed: number;
  /** Best top-1 per budget after this generation (null: nothing within budget yet). */
  readonly best: readonly (number | null)[];
}

/** Everything needed to continue a search exactly: plain JSON. */
export interface EvolutionState {
  readonly genes: number;
  readonly params: EvolutionParams;
  readonly budgets: readonly Budget[];
  generation: number;
  rng: [number, number, number, number];
  /** Per budget: best candidates ever seen, best first. */
  top: Evaluated[][];
  /** Every candidate this search has tested, by encoding key (never re-evaluated). */
  tested: Record<string, { top1: number | null; failed?: string; cost: CandidateCost }>;
  history: GenerationSummary[];
}

export function initialSearchState(
  genes: number,
  budgets: readonly Budget[],
  params: EvolutionParams,
): EvolutionState {
  if (budgets.length === 0) throw new ValidationError('budgets', 'at least one budget is required');
  return {
    genes,
    params,
    budgets,
    generation: 0,
    rng: new Rng(params.seed).state(),
    top: budgets.map(() => []),
    tested: {},
    history: [],
  };
}

/**
 * Proposes the next generation's candidates for every budget (deterministic in the state):
 * mutants and crossovers of the best `parents`, then random candidates up to `population`,
 * each rejected at generation time if it breaks its budget or was tested before.
 */
export function proposeGeneration(
  state: EvolutionState,
  costOf: (e: Encoding) => CandidateCost,
): Candidate[] {
  const rng = new Rng(state.rng);
  const p = state.params;
  const seen = new Set(Object.keys(state.tested));
  const out: Candidate[] = [];
  state.budgets.forEach((budget, bi) => {
    const fresh = (e: Encoding) => {
      const k = encodingKey(e);
      if (seen.has(k)) return false;
      const c = costOf(e);
      if (!withinBudget(c, budget)) return false;
      seen.add(k);
      out.push({ encoding: e, cost: c });
      return true;
    };
    const parents = topK(state.top[bi] ?? [], p.parents, (x) => x.top1).map((x) => x.encoding);
    let made = 0;
    const attempts = p.maxAttemptsPerCandidate;
    if (parents.length > 0) {
      for (let i = 0; i < p.mutants && made < p.population; i++) {
        if (generateWithin(() => mutate(pick(parents, rng), p.mutationProb, rng), fresh, attempts))
          made++;
      }
      for (let i = 0; i < p.crossovers && made < p.population; i++) {
        if (
          generateWithin(
            () => crossover(pick(parents, rng), pick(parents, rng), rng),
            fresh,
            attempts,
          )
        )
          made++;
      }
    }
    while (made < p.population) {
      if (!generateWithin(() => randomEncoding(state.genes, rng, SCALE_COUNT), fresh, attempts))
        break;
      made++;
    }
  });
  state.rng = rng.state();
  return out;
}

/** Records outcomes, updates each budget's best-ever list and the history. */
export function absorbGeneration(
  state: EvolutionState,
  candidates: readonly Candidate[],
  outcomes: readonly Outcome[],
): GenerationSummary {
  let failed = 0;
  const scored: Evaluated[] = [];
  candidates.forEach((c, i) => {
    const o = outcomes[i];
    const key = encodingKey(c.encoding);
    if (!o || 'failed' in o) {
      failed++;
      state.tested[key] = { top1: null, failed: o ? o.failed : 'no outcome', cost: c.cost };
      return;
    }
    state.tested[key] = { top1: o.top1, cost: c.cost };
    scored.push({ ...c, top1: o.top1 });
  });
  state.budgets.forEach((b, bi) => {
    const inside = scored.filter((s) => withinBudget(s.cost, b));
    state.top[bi] = topK([...(state.top[bi] ?? []), ...inside], state.params.keep, (x) => x.top1);
  });
  const summary: GenerationSummary = {
    generation: state.generation,
    proposed: candidates.length,
    evaluated: scored.length,
    failed,
    best: state.top.map((t) => t[0]?.top1 ?? null),
  };
  state.history.push(summary);
  state.generation++;
  return summary;
}

export function isFinished(state: EvolutionState): boolean {
  return state.generation >= state.params.generations;
}

/** Best candidate per budget (null when no candidate met it). */
export function bestPerBudget(state: EvolutionState): (Evaluated | null)[] {
  return state.top.map((t) => t[0] ?? null);
}

/** Pareto front of every successfully tested candidate: MACs against top-1, by rising MACs. */
export function searchPareto(state: EvolutionState): Evaluated[] {
  const points: { cost: number; score: number; e: Evaluated }[] = [];
  for (const [key, t] of Object.entries(state.tested)) {
    if (t.top1 === null) continue;
    const e: Evaluated = { encoding: key.split(',').map(Number), cost: t.cost, top1: t.top1 };
    points.push({ cost: t.cost.macs, score: t.top1, e });
  }
  return paretoFront(points).map((p) => p.e);
}

export interface RunOptions {
  readonly costOf: (e: Encoding) => CandidateCost;
  readonly pool: EvaluatorPool;
  readonly signal?: AbortSignal;
  /** Called after each generation with the state to persist (e.g. to JetStream KV). */
  readonly onGeneration?: (
    summary: GenerationSummary,
    state: EvolutionState,
  ) => void | Promise<void>;
}

/** Runs (or resumes) a search to completion; the loop is bounded by `generations`. */
export async function runSearch(state: EvolutionState, o: RunOptions): Promise<EvolutionState> {
  while (!isFinished(state)) {
    o.signal?.throwIfAborted();
    const candidates = proposeGeneration(state, o.costOf);
    const outcomes = candidates.length > 0 ? await o.pool.evaluate(candidates, o.signal) : [];
    const summary = absorbGeneration(state, candidates, outcomes);
    await o.onGeneration?.(summary, state);
  }
  return state;
}
