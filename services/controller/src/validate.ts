/**
 * StartSearch validation: every field checked, INVALID_ARGUMENT naming the field (camelCase
 * paths as in the proto JSON, e.g. `budgets[1].maxMacs`, `evolution.populationSize`).
 */
import {
  type Budget,
  checkBudgetFeasible,
  costModel,
  type EvolutionParams,
  type Network,
  resolveEvolutionParams,
  ValidationError,
} from '@metaprune/core';
import {
  networkFromProto,
  type ResolvedEvaluationSettings,
  resolveEvaluationSettings,
} from '@metaprune/evaluator';
import type { common, controller } from '@metaprune/proto';
import { InvalidArgumentError, requireNumber } from '@metaprune/runtime';

export const MAX_BUDGETS = 64;
const MAX_U53 = Number.MAX_SAFE_INTEGER;

/** Re-throws a core ValidationError as INVALID_ARGUMENT naming the same field. */
export function asInvalidArgument<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ValidationError) {
      const prefix = `${err.field}: `;
      const msg = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
      throw new InvalidArgumentError(err.field, msg, { cause: err });
    }
    throw err;
  }
}

export interface ResolvedEvolution {
  params: EvolutionParams;
  maxFailures: number;
  proto: controller.EvolutionParams;
}

/** Evolution parameters with defaults (0 = default) resolved and ranges checked. */
export function resolveEvolution(
  e: controller.EvolutionParams | undefined,
  seed: number,
): ResolvedEvolution {
  const f = 'evolution';
  const population = requireNumber(`${f}.populationSize`, e?.populationSize || 50, {
    min: 2,
    max: 10_000,
    integer: true,
  });
  const generations = requireNumber(`${f}.generations`, e?.generations || 20, {
    min: 1,
    max: 10_000,
    integer: true,
  });
  const keep = requireNumber(`${f}.keepBest`, e?.keepBest || population, {
    min: 1,
    max: 10_000,
    integer: true,
  });
  const parents = requireNumber(`${f}.parents`, e?.parents || Math.min(10, keep), {
    min: 1,
    max: keep,
    integer: true,
  });
  const half = Math.floor(population / 2);
  const mutants = requireNumber(`${f}.mutants`, e?.mutants || half, {
    min: 0,
    max: population,
    integer: true,
  });
  const crossovers = requireNumber(`${f}.crossovers`, e?.crossovers || half, {
    min: 0,
    max: population - mutants,
    integer: true,
  });
  const rawProb = e?.mutationProbability ?? 0;
  if (Number.isNaN(rawProb)) {
    throw new InvalidArgumentError(`${f}.mutationProbability`, 'NaN is not allowed');
  }
  const mutationProb = rawProb === 0 ? 0.1 : rawProb;
  if (!(mutationProb > 0 && mutationProb <= 1)) {
    throw new InvalidArgumentError(
      `${f}.mutationProbability`,
      `must be in (0, 1], got ${String(mutationProb)}`,
    );
  }
  const maxAttempts = requireNumber(`${f}.maxAttempts`, e?.maxAttempts || 1000, {
    min: 1,
    max: 1_000_000,
    integer: true,
  });
  const maxFailures = requireNumber(
    `${f}.maxFailures`,
    e?.maxFailures || Math.max(1, Math.ceil(0.1 * population * generations)),
    { min: 0, max: 1_000_000, integer: true },
  );
  const params = asInvalidArgument(() =>
    resolveEvolutionParams(
      {
        population,
        generations,
        keep,
        parents,
        mutants,
        crossovers,
        mutationProb,
        maxAttemptsPerCandidate: maxAttempts,
        seed,
      },
      f,
    ),
  );
  return {
    params,
    maxFailures,
    proto: {
      populationSize: population,
      generations,
      keepBest: keep,
      parents,
      mutants,
      crossovers,
      mutationProbability: mutationProb,
      maxAttempts,
      maxFailures,
    },
  };
}

/** Evaluation settings: ranges checked, defaults filled (batch size 0 → 128). */
export function resolveSettings(
  s: common.EvaluationSettings | undefined,
): ResolvedEvaluationSettings {
  const f = 'evaluation';
  if (s) {
    requireNumber(`${f}.recalibrationBatches`, s.recalibrationBatches, {
      min: 0,
      max: 10_000,
      integer: true,
    });
    requireNumber(`${f}.batchSize`, s.batchSize, { min: 0, max: 4096, integer: true });
    requireNumber(`${f}.validationImages`, s.validationImages, {
      min: 0,
      max: 1_000_000,
      integer: true,
    });
  }
  return resolveEvaluationSettings(s);
}

function optU53(field: string, v: number | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  return requireNumber(field, v, { min, max: MAX_U53 - 1, integer: true });
}

/** Budgets checked field by field and against the network (infeasible → INVALID_ARGUMENT). */
export function resolveBudgets(budgets: readonly common.Budget[], network: Network): Budget[] {
  if (budgets.length === 0) {
    throw new InvalidArgumentError('budgets', 'at least one budget is required');
  }
  if (budgets.length > MAX_BUDGETS) {
    throw new InvalidArgumentError(
      'budgets',
      `at most ${MAX_BUDGETS} budgets, got ${budgets.length}`,
    );
  }
  const model = costModel(network);
  const lo = model.cost(network.genes.map(() => 0));
  const hi = model.cost(network.genes.map(() => 30));
  return budgets.map((b, i) => {
    const f = `budgets[${i}]`;
    if (b.name.length > 64) {
      throw new InvalidArgumentError(`${f}.name`, `at most 64 characters, got ${b.name.length}`);
    }
    if (b.maxLatencyMs !== undefined) {
      throw new InvalidArgumentError(
        `${f}.maxLatencyMs`,
        'latency budgets need a latency profiler, which this controller is not connected to; use MACs or parameter bounds',
      );
    }
    const budget: Budget = {
      ...(b.maxMacs !== undefined ? { maxMacs: optU53(`${f}.maxMacs`, b.maxMacs) } : {}),
      ...(b.minMacs !== undefined ? { minMacs: optU53(`${f}.minMacs`, b.minMacs, 0) } : {}),
      ...(b.maxParams !== undefined ? { maxParams: optU53(`${f}.maxParams`, b.maxParams) } : {}),
      ...(b.minParams !== undefined ? { minParams: optU53(`${f}.minParams`, b.minParams, 0) } : {}),
    };
    if (
      budget.minParams !== undefined &&
      budget.maxParams !== undefined &&
      budget.minParams > budget.maxParams
    ) {
      throw new InvalidArgumentError(
        `${f}.minParams`,
        `${budget.minParams} is above maxParams ${budget.maxParams}`,
      );
    }
    asInvalidArgument(() => checkBudgetFeasible(budget, lo, hi, f));
    return budget;
  });
}

/** Checks that need no network: ids, names, evolution and evaluation settings. */
export interface ShapeChecked {
  evolution: ResolvedEvolution;
  settings: ResolvedEvaluationSettings;
  /** The request's network, when it names one. */
  network: Network | undefined;
}

export function checkStartShape(req: controller.StartSearchRequest): ShapeChecked {
  if (!req.pruningnetId) throw new InvalidArgumentError('pruningnetId', 'is required');
  if (req.pruningnetId.length > 128 || !/^[\x21-\x7e]+$/.test(req.pruningnetId)) {
    throw new InvalidArgumentError(
      'pruningnetId',
      'must be 1-128 printable ASCII characters without spaces',
    );
  }
  requireNumber('pruningnetVersion', req.pruningnetVersion, {
    min: 0,
    max: 2 ** 32 - 1,
    integer: true,
  });
  if (req.displayName.length > 128) {
    throw new InvalidArgumentError(
      'displayName',
      `at most 128 characters, got ${req.displayName.length}`,
    );
  }
  if (req.budgets.length === 0) {
    throw new InvalidArgumentError('budgets', 'at least one budget is required');
  }
  const network = req.network
    ? asInvalidArgument(() => networkFromProto(req.network, 'network'))
    : undefined;
  return {
    evolution: resolveEvolution(req.evolution, req.seed),
    settings: resolveSettings(req.evaluation),
    network,
  };
}
