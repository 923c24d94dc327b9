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
import type { common, controller } from '@metaprune/proto';
import { InvalidArgumentError, requireNumber } from '@metaprune/runtime';
import {
  checkEvaluationSettings,
  networkFromProto,
  type ResolvedEvaluationSettings,
} from '@metaprune/wire';
import type { LatencyQuery, ResolvedLatencyTable } from './latency.js';

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
function optU53(field: string, v: number | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  return requireNumber(field, v, { min, max: MAX_U53 - 1, integer: true });
}

export const MAX_LATENCY_MS = 1e6;

/** The latency table a request's budgets need, with the field of the first latency budget. */
export interface LatencyRequest extends LatencyQuery {
  /** `budgets[i]` of the first budget with a latency bound. */
  field: string;
}

/**
 * The latency table the budgets need, or undefined when no budget bounds latency. Checks
 * the latency fields of every budget; all latency budgets must name the same device,
 * backend and batch size (a candidate has one predicted latency). `available` false: this
 * controller has no latency profiler, so any latency budget is refused.
 */
export function latencyRequestOf(
  budgets: readonly common.Budget[],
  available: boolean,
): LatencyRequest | undefined {
  let first: LatencyRequest | undefined;
  for (const [i, b] of budgets.entries()) {
    if (b.maxLatencyMs === undefined) continue;
    const f = `budgets[${i}]`;
    if (!available) {
      throw new InvalidArgumentError(
        `${f}.maxLatencyMs`,
        'latency budgets need a latency profiler, which this controller is not connected to (setting latencyProfiler, env CONTROLLER_LATENCY_PROFILER); use MACs or parameter bounds',
      );
    }
    const ms = b.maxLatencyMs;
    if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_LATENCY_MS) {
      throw new InvalidArgumentError(
        `${f}.maxLatencyMs`,
        `must be a number of milliseconds in (0, ${MAX_LATENCY_MS}], got ${String(ms)}`,
      );
    }
    const device = b.latencyDeviceId;
    if (!device) {
      throw new InvalidArgumentError(
        `${f}.latencyDeviceId`,
        'is required with maxLatencyMs: the device (id or name) whose latency table predicts latency',
      );
    }
    if (device.length > 128 || !/^[\x21-\x7e]+$/.test(device)) {
      throw new InvalidArgumentError(
        `${f}.latencyDeviceId`,
        'must be 1-128 printable ASCII characters without spaces',
      );
    }
    if (b.latencyBackend.length > 32 || !/^[A-Za-z0-9_-]*$/.test(b.latencyBackend)) {
      throw new InvalidArgumentError(
        `${f}.latencyBackend`,
        `must be at most 32 characters of [A-Za-z0-9_-], got ${JSON.stringify(b.latencyBackend)}`,
      );
    }
    const batchSize =
      requireNumber(`${f}.latencyBatchSize`, b.latencyBatchSize, {
        min: 0,
        max: 4096,
        integer: true,
      }) || 1;
    if (!first) {
      first = { device, backend: b.latencyBackend, batchSize, version: 0, field: f };
      continue;
    }
    const differs = (what: string, mine: string | number, theirs: string | number) =>
      new InvalidArgumentError(
        `${f}.${what}`,
        `${JSON.stringify(mine)} differs from ${first!.field}.${what} ${JSON.stringify(theirs)}; all latency budgets of a search must use the same device, backend and batch size (one latency table)`,
      );
    if (device !== first.device) throw differs('latencyDeviceId', device, first.device);
    if (b.latencyBackend !== first.backend) {
      throw differs('latencyBackend', b.latencyBackend, first.backend);
    }
    if (batchSize !== first.batchSize) {
      throw differs('latencyBatchSize', b.latencyBatchSize, first.batchSize);
    }
  }
  return first;
}

/**
 * Budgets checked field by field and against the network (infeasible → INVALID_ARGUMENT).
 * Latency bounds need `latency`, the table resolved for `latencyRequestOf`'s request; a
 * bound below every candidate's predicted latency is refused with the reachable range.
 */
export function resolveBudgets(
  budgets: readonly common.Budget[],
  network: Network,
  latency?: ResolvedLatencyTable,
): Budget[] {
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
      if (!latency) {
        throw new InvalidArgumentError(
          `${f}.maxLatencyMs`,
          'latency budgets need a latency profiler, which this controller is not connected to (setting latencyProfiler, env CONTROLLER_LATENCY_PROFILER); use MACs or parameter bounds',
        );
      }
      const lo = latency.predictor.lowerBoundMs();
      const hi = latency.predictor.upperBoundMs();
      if (!(b.maxLatencyMs >= lo)) {
        const r = latency.ref;
        throw new InvalidArgumentError(
          `${f}.maxLatencyMs`,
          `${b.maxLatencyMs} ms cannot be met by any candidate: predicted latencies of this network on device "${r.device}" (backend ${r.backend}, batch size ${r.batchSize}, table version ${r.version}) lie in [${lo.toFixed(4)}, ${hi.toFixed(4)}] ms`,
        );
      }
    }
    const budget: Budget = {
      ...(b.maxMacs !== undefined ? { maxMacs: optU53(`${f}.maxMacs`, b.maxMacs) } : {}),
      ...(b.minMacs !== undefined ? { minMacs: optU53(`${f}.minMacs`, b.minMacs, 0) } : {}),
      ...(b.maxParams !== undefined ? { maxParams: optU53(`${f}.maxParams`, b.maxParams) } : {}),
      ...(b.minParams !== undefined ? { minParams: optU53(`${f}.minParams`, b.minParams, 0) } : {}),
      ...(b.maxLatencyMs !== undefined ? { maxLatencyMs: b.maxLatencyMs } : {}),
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
    settings: checkEvaluationSettings(req.evaluation),
    network,
  };
}
