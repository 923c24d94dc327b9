/**
 * Phase: one evolutionary search through the controller over gRPC (StartSearch, WatchSearch
 * for live progress, GetSearch for the result). Records the best proxy top-1 per budget
 * after every generation (for the search-progress plot). An abort cancels the search.
 */
import type { Encoding } from '@metaprune/core';
import { type common, controller } from '@metaprune/proto';
import { progressLine } from '../commands/search.js';
import { call, cliError, followSearch, searchClient } from '../remote.js';
import type { SearchRecipe } from './config.js';
import type { Reporter } from './reporter.js';
import { throwIfAborted } from './session.js';

export interface GenerationPoint {
  generation: number;
  evaluated: number;
  seconds: number;
  /** Best proxy top-1 so far per budget (null while none met it). */
  best: (number | null)[];
}

export interface FoundCandidate {
  encoding: Encoding;
  macs: number;
  params: number;
  /** PruningNet-proxy top-1 on sub-val. */
  top1: number;
  latencyMs?: number;
}

export interface SearchOutcome {
  searchId: string;
  search: controller.Search;
  /** Best candidate per budget, in budget order (null when none met it). */
  best: (FoundCandidate | null)[];
  pareto: FoundCandidate[];
  history: GenerationPoint[];
  evaluated: number;
  seconds: number;
}

export interface SearchOptions {
  controllerAddress: string;
  pruningnetId: string;
  pruningnetVersion: number;
  budgets: common.Budget[];
  recipe: SearchRecipe;
  displayName?: string;
  reporter: Reporter;
  signal?: AbortSignal;
}

export function foundOf(c: controller.Candidate): FoundCandidate {
  return {
    encoding: [...(c.encoding?.genes ?? [])],
    macs: c.macs,
    params: c.params,
    top1: c.top1,
    ...(c.predictedLatencyMs !== undefined ? { latencyMs: c.predictedLatencyMs } : {}),
  };
}

export async function runSearchPhase(o: SearchOptions): Promise<SearchOutcome> {
  const client = searchClient(o.controllerAddress);
  const t0 = Date.now();
  let searchId: string | undefined;
  const onAbort = () => {
    if (searchId) void call(client, client.cancelSearch, { searchId }).catch(() => {});
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    throwIfAborted(o.signal);
    const req = controller.StartSearchRequest.fromPartial({
      pruningnetId: o.pruningnetId,
      pruningnetVersion: o.pruningnetVersion,
      budgets: o.budgets,
      evolution: {
        generations: o.recipe.generations,
        populationSize: o.recipe.population,
        maxAttempts: o.recipe.maxAttempts ?? 200_000,
      },
      evaluation: {
        recalibrationBatches: o.recipe.recalibrationBatches,
        batchSize: o.recipe.batchSize,
        validationImages: o.recipe.validationImages,
        seed: 0,
      },
      seed: o.recipe.seed,
      displayName: o.displayName ?? '',
    });
    try {
      searchId = (await call(client, client.startSearch, req)).searchId;
    } catch (err) {
      throw cliError(err, 'StartSearch');
    }
    o.reporter.line(
      `search ${searchId}: ${o.budgets.map((b) => b.name).join(', ')}; ${o.recipe.generations} generations x ${o.recipe.population}`,
    );
    const history: GenerationPoint[] = [];
    const search = await followSearch(client, searchId, {
      onProgress: (p) => {
        const elapsed = (Date.now() - t0) / 1000;
        const last = history[history.length - 1];
        const newGeneration = p.generation > 0 && (!last || last.generation !== p.generation);
        if (newGeneration) {
          history.push({
            generation: p.generation,
            evaluated: p.evaluated,
            seconds: elapsed,
            best: p.best.map((b) => (b.best ? b.best.top1 : null)),
          });
        }
        o.reporter.status(`search ${progressLine(p, elapsed)}`, newGeneration);
      },
    });
    o.reporter.clear();
    throwIfAborted(o.signal);
    const p = search.progress!;
    if (p.state !== controller.SearchState.SUCCEEDED) {
      throw new Error(
        `search ${searchId} ended ${controller.searchStateToJSON(p.state)}${search.error ? `: ${search.error}` : ''}`,
      );
    }
    return {
      searchId,
      search,
      best: p.best.map((b) => (b.best ? foundOf(b.best) : null)),
      pareto: search.paretoFront.map(foundOf),
      history,
      evaluated: p.evaluated,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    o.reporter.clear();
    o.signal?.removeEventListener('abort', onAbort);
    client.close();
  }
}
