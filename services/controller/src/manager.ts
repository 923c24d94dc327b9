/**
 * Runs searches: validation and resolution at start, the evolution (core's runSearch) over
 * an evaluator pool, the state persisted after every generation (a restarted controller
 * resumes from it and proposes exactly the same candidates), cancellation, watching.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  bestPerBudget,
  type CandidateCost,
  costModel,
  type Encoding,
  type Evaluated,
  encodingKey,
  initialSearchState,
  type LatencyPredictor,
  latencyCostOf,
  type Network,
  runSearch,
  searchPareto,
} from '@metaprune/core';
import { common, controller } from '@metaprune/proto';
import {
  CancelledError,
  createMetrics,
  FailedPreconditionError,
  InvalidArgumentError,
  type Logger,
  type MetapruneMetrics,
  NotFoundError,
  nullLogger,
  ResourceExhaustedError,
  requireNumber,
  SPAN_NAMES,
  TELEMETRY_ATTRS,
  UnavailableError,
  withSpan,
} from '@metaprune/runtime';
import {
  jobIdOf,
  type MemoStore,
  networkFromProto,
  type PoolContext,
  type PoolFactory,
  type PruningNetResolver,
  sameProtoSpec,
} from '@metaprune/wire';
import type { NatsConnection } from '@nats-io/transport-node';
import { memoizedEvaluations, searchContextOf } from './evaluations.js';
import type { LatencyTableSource } from './latency.js';
import { transition } from './lifecycle.js';
import {
  AsyncQueue,
  ConflictError,
  type SearchRecord,
  type SearchStatus,
  type SearchStore,
  TERMINAL,
} from './store.js';
import {
  asInvalidArgument,
  checkStartShape,
  latencyRequestOf,
  resolveBudgets,
} from './validate.js';

/** Transient progress inside a generation (not persisted). */
export interface LiveProgress {
  searchId: string;
  generation: number;
  done: number;
  size: number;
  memoHits: number;
}

/** Carries live progress to watchers on any controller replica. */
export interface ProgressBus {
  publish(p: LiveProgress): void;
  subscribe(searchId: string, cb: (p: LiveProgress) => void): () => void;
}

export class LocalProgressBus implements ProgressBus {
  private readonly ee = new EventEmitter();
  constructor() {
    this.ee.setMaxListeners(0);
  }
  publish(p: LiveProgress): void {
    this.ee.emit(p.searchId, p);
  }
  subscribe(searchId: string, cb: (p: LiveProgress) => void): () => void {
    this.ee.on(searchId, cb);
    return () => this.ee.off(searchId, cb);
  }
}

/** Live progress over core NATS (`metaprune.events.search.<id>.progress`, JSON). */
export class NatsProgressBus implements ProgressBus {
  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix = 'metaprune.events.search',
  ) {}
  publish(p: LiveProgress): void {
    try {
      this.nc.publish(`${this.prefix}.${p.searchId}.progress`, JSON.stringify(p));
    } catch {
      // best effort
    }
  }
  subscribe(searchId: string, cb: (p: LiveProgress) => void): () => void {
    const sub = this.nc.subscribe(`${this.prefix}.${searchId}.progress`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          cb(msg.json<LiveProgress>());
        } catch {
          // ignore malformed
        }
      },
    });
    return () => sub.unsubscribe();
  }
}

export interface SearchManagerOptions {
  store: SearchStore;
  pools: PoolFactory;
  pruningnets: PruningNetResolver;
  bus?: ProgressBus;
  logger?: Logger;
  maxConcurrentSearches?: number;
  /**
   * Latency tables for budgets with maxLatencyMs (the latency profiler). Without it such
   * budgets are refused with INVALID_ARGUMENT.
   */
  latency?: LatencyTableSource;
  /** The evaluation memo GetEvaluations reads (the pools write it). */
  memo?: MemoStore;
}

interface Running {
  abort: AbortController;
  /** Why the run is being stopped: cancel (record CANCELLED) or shutdown (leave RUNNING). */
  stopReason?: 'cancel' | 'shutdown';
  done: Promise<void>;
  live?: LiveProgress;
  generationStartedAt: number;
}

const STATE_ENUM: Record<SearchStatus, controller.SearchState> = {
  PENDING: controller.SearchState.PENDING,
  RUNNING: controller.SearchState.RUNNING,
  SUCCEEDED: controller.SearchState.SUCCEEDED,
  FAILED: controller.SearchState.FAILED,
  CANCELLED: controller.SearchState.CANCELLED,
};

class SearchFailure extends Error {}

export function newSearchId(now = Date.now()): string {
  return `s${now.toString(36)}-${randomBytes(5).toString('hex')}`;
}

export class SearchManager {
  private readonly running = new Map<string, Running>();
  private readonly logger: Logger;
  private readonly bus: ProgressBus;
  private readonly metrics: MetapruneMetrics;
  private closed = false;

  constructor(private readonly o: SearchManagerOptions) {
    this.logger = o.logger ?? nullLogger;
    this.bus = o.bus ?? new LocalProgressBus();
    this.metrics = createMetrics();
  }

  /** Validates, resolves the PruningNet, stores the search and starts it. Returns its id. */
  async start(req: controller.StartSearchRequest): Promise<string> {
    if (this.closed) throw new FailedPreconditionError('the controller is shutting down');
    const shape = checkStartShape(req);
    const latencyRequest = latencyRequestOf(req.budgets, this.o.latency !== undefined);
    const max = this.o.maxConcurrentSearches ?? 16;
    if (this.running.size >= max) {
      throw new ResourceExhaustedError(
        `${this.running.size} searches are running, the maximum of this controller is ${max}`,
      );
    }
    const pn = await this.o.pruningnets.resolve(req.pruningnetId, req.pruningnetVersion);
    if (req.network && !asInvalidArgument(() => sameProtoSpec(req.network!, pn.network))) {
      throw new InvalidArgumentError(
        'network',
        `does not match the network of PruningNet "${pn.pruningnetId}" v${pn.version} (${describeSpec(pn.network)}); leave it unset to use the PruningNet's`,
      );
    }
    const network = asInvalidArgument(() => networkFromProto(pn.network, 'network'));
    if (pn.geneCount && pn.geneCount !== network.genes.length) {
      throw new FailedPreconditionError(
        `PruningNet "${pn.pruningnetId}" v${pn.version} reports ${pn.geneCount} genes but its network has ${network.genes.length}`,
      );
    }
    // One table for every latency budget, fetched once and compiled here; the version is
    // stored with the search so that a resumed search predicts with the same table.
    const latency =
      latencyRequest && this.o.latency
        ? await this.o.latency.resolve(latencyRequest, network, latencyRequest.field)
        : undefined;
    const budgets = resolveBudgets(req.budgets, network, latency);
    const searchId = newSearchId();
    const resolvedRequest = controller.StartSearchRequest.fromPartial({
      ...req,
      network: pn.network,
      pruningnetVersion: pn.version,
      evolution: shape.evolution.proto,
      evaluation: {
        recalibrationBatches: shape.settings.recalibrationBatches,
        batchSize: shape.settings.batchSize,
        validationImages: shape.settings.validationImages,
        seed: shape.settings.seed,
      },
    });
    const record: SearchRecord = {
      v: 1,
      searchId,
      displayName: req.displayName,
      request: controller.StartSearchRequest.toJSON(resolvedRequest),
      status: 'PENDING',
      error: '',
      createTime: new Date().toISOString(),
      ctx: {
        pruningnetId: pn.pruningnetId,
        pruningnetVersion: pn.version,
        network: common.NetworkSpec.toJSON(pn.network),
        settings: shape.settings,
        data: pn.data,
        maxFailures: shape.evolution.maxFailures,
        ...(latency ? { latency: latency.ref } : {}),
      },
      state: initialSearchState(network.genes.length, budgets, shape.evolution.params),
      generationOf: {},
      failed: 0,
      rejected: 0,
      memoHits: 0,
      activeMs: 0,
    };
    const revision = await this.o.store.create(record);
    this.logger.info('search started', {
      searchId,
      pruningnetId: pn.pruningnetId,
      version: pn.version,
      budgets: budgets.length,
      generations: shape.evolution.params.generations,
      population: shape.evolution.params.population,
      ...(latency ? { latencyTable: latency.ref } : {}),
    });
    this.launch(record, revision, latency?.predictor);
    return searchId;
  }

  /** Resumes every search that is not terminal (after a controller restart). */
  async resumeAll(): Promise<string[]> {
    const resumed: string[] = [];
    for (const r of await this.o.store.list()) {
      if (TERMINAL.has(r.status) || this.running.has(r.searchId)) continue;
      const stored = await this.o.store.get(r.searchId);
      if (!stored || TERMINAL.has(stored.record.status)) continue;
      this.logger.info('resuming search', {
        searchId: r.searchId,
        generation: stored.record.state.generation,
      });
      this.launch(stored.record, stored.revision);
      resumed.push(r.searchId);
    }
    return resumed;
  }

  private launch(record: SearchRecord, revision: number, predictor?: LatencyPredictor): void {
    const entry: Running = {
      abort: new AbortController(),
      done: Promise.resolve(),
      generationStartedAt: Date.now(),
    };
    this.running.set(record.searchId, entry);
    entry.done = this.run(record, revision, entry, predictor)
      .catch((err: unknown) => {
        this.logger.error('search runner crashed', { searchId: record.searchId, err });
      })
      .finally(() => {
        if (this.running.get(record.searchId) === entry) this.running.delete(record.searchId);
      });
  }

  private async run(
    rec: SearchRecord,
    revision: number,
    entry: Running,
    predictor?: LatencyPredictor,
  ): Promise<void> {
    const id = rec.searchId;
    const networkProto = common.NetworkSpec.fromJSON(rec.ctx.network);
    const network = networkFromProto(networkProto);
    const model = costModel(network);
    let costCalls = 0;
    // MACs and params; plus the predicted latency when the search has latency budgets
    // (set below, once the table is at hand).
    let cost = (e: Encoding): CandidateCost => model.cost(e);
    const costOf = (e: Encoding): CandidateCost => {
      costCalls++;
      return cost(e);
    };
    const ctx: PoolContext = {
      searchId: id,
      pruningnetId: rec.ctx.pruningnetId,
      pruningnetVersion: rec.ctx.pruningnetVersion,
      network,
      networkProto,
      settings: rec.ctx.settings,
      data: rec.ctx.data,
    };
    let lastCandidates: readonly { encoding: Encoding }[] = [];
    let generationHits = 0;
    const inner = this.o.pools.create(ctx, {
      generation: () => rec.state.generation,
      onProgress: (done, size, hits) => {
        generationHits = hits;
        const live: LiveProgress = {
          searchId: id,
          generation: rec.state.generation,
          done,
          size,
          memoHits: rec.memoHits + hits,
        };
        entry.live = live;
        this.bus.publish(live);
      },
    });
    const pool = {
      evaluate: (
        cands: readonly { encoding: Encoding; cost: CandidateCost }[],
        s?: AbortSignal,
      ) => {
        lastCandidates = cands;
        generationHits = 0;
        return withSpan(SPAN_NAMES.searchGeneration, () => inner.evaluate(cands, s), {
          [TELEMETRY_ATTRS.searchId]: id,
          [TELEMETRY_ATTRS.generation]: rec.state.generation,
          [TELEMETRY_ATTRS.pruningNetVersion]: rec.ctx.pruningnetVersion,
          'metaprune.search.candidates': cands.length,
        });
      },
    };

    // Writes the record with the expected revision. NATS being away (a broker restart) is
    // retried for up to 2 minutes; a conflict means someone else changed the search.
    const persist = async (): Promise<void> => {
      let delay = 250;
      let retried = false;
      const until = Date.now() + 120_000;
      for (;;) {
        try {
          revision = await this.o.store.update(rec, revision);
          return;
        } catch (err) {
          if (err instanceof ConflictError) {
            const cur = await this.o.store.get(id).catch(() => undefined);
            if (
              retried &&
              cur &&
              cur.record.status === rec.status &&
              cur.record.state.generation === rec.state.generation
            ) {
              revision = cur.revision; // our earlier attempt was stored; its reply was lost
              return;
            }
            entry.stopReason = cur && cur.record.status === 'CANCELLED' ? 'cancel' : 'shutdown';
            entry.abort.abort(new CancelledError(`search ${id} was changed elsewhere`));
            throw new CancelledError(`search ${id} was changed elsewhere; this runner stops`);
          }
          if (entry.abort.signal.aborted || Date.now() > until) throw err;
          this.logger.warn('saving the search state failed; retrying', { searchId: id, err });
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 5000);
          retried = true;
        }
      }
    };

    try {
      if (rec.ctx.latency) {
        cost = latencyCostOf(
          predictor ?? (await this.latencyPredictorOf(rec, network, entry.abort.signal)),
        );
      }
      if (rec.status === 'PENDING') {
        transition(rec, 'RUNNING');
        await persist();
      }
      entry.generationStartedAt = Date.now();
      await runSearch(rec.state, {
        costOf,
        pool,
        signal: entry.abort.signal,
        onGeneration: async (summary) => {
          for (const c of lastCandidates)
            rec.generationOf[encodingKey(c.encoding)] ??= summary.generation;
          rec.failed += summary.failed;
          rec.rejected += Math.max(0, costCalls - summary.proposed);
          rec.memoHits += generationHits;
          costCalls = 0;
          generationHits = 0;
          const now = Date.now();
          rec.activeMs += now - entry.generationStartedAt;
          entry.generationStartedAt = now;
          entry.live = undefined;
          if (rec.failed > rec.ctx.maxFailures) {
            throw new SearchFailure(
              `${rec.failed} evaluations failed, more than the failure budget (maxFailures ${rec.ctx.maxFailures}); last: ${lastFailure(rec) ?? 'unknown'}`,
            );
          }
          await persist();
          const attrs = { [TELEMETRY_ATTRS.searchId]: id };
          this.metrics.searchGeneration.record(rec.state.generation, attrs);
          this.metrics.searchEvaluated.record(
            Object.values(rec.state.tested).filter((t) => t.top1 !== null).length,
            attrs,
          );
          this.logger.info('generation done', {
            searchId: id,
            generation: summary.generation,
            proposed: summary.proposed,
            evaluated: summary.evaluated,
            failed: summary.failed,
            best: summary.best,
          });
        },
      });
      transition(rec, 'SUCCEEDED');
      await persist();
      this.logger.info('search succeeded', { searchId: id });
    } catch (err) {
      if (entry.abort.signal.aborted) {
        if (entry.stopReason === 'shutdown' || entry.stopReason === undefined) {
          this.logger.info('search runner stopped; the search stays resumable', { searchId: id });
        }
        return; // cancel() records CANCELLED itself
      }
      const message =
        err instanceof SearchFailure || err instanceof InvalidArgumentError
          ? err.message
          : `internal error: ${err instanceof Error ? err.message : String(err)}`;
      this.logger.error('search failed', { searchId: id, err });
      const endTime = new Date().toISOString();
      // Fails the stored record when ours cannot be written.
      const failStored = async () => {
        const cur = await this.o.store.get(id).catch(() => undefined);
        if (!cur || TERMINAL.has(cur.record.status)) return;
        transition(cur.record, 'FAILED', { error: message, endTime });
        await this.o.store.update(cur.record, cur.revision).catch(() => {});
      };
      // the final save of a finished search failed: the stored record is still running
      if (TERMINAL.has(rec.status)) return failStored();
      // The in-memory record is consistent (generations are absorbed atomically).
      transition(rec, 'FAILED', { error: message, endTime });
      try {
        await this.o.store.update(rec, revision);
      } catch {
        await failStored();
      }
    }
  }

  /**
   * The predictor of a resumed search: the same table version it started with, fetched
   * again. An unreachable profiler is retried for up to 2 minutes (the controller may have
   * come up first); a table that is gone fails the search.
   */
  private async latencyPredictorOf(
    rec: SearchRecord,
    network: Network,
    signal: AbortSignal,
  ): Promise<LatencyPredictor> {
    const ref = rec.ctx.latency!;
    const what = `the latency table the search started with (device "${ref.device}", backend ${ref.backend}, batch size ${ref.batchSize}, version ${ref.version})`;
    const source = this.o.latency;
    if (!source) {
      throw new SearchFailure(
        `${what} is needed to resume it, but this controller has no latency profiler (setting latencyProfiler, env CONTROLLER_LATENCY_PROFILER)`,
      );
    }
    const index = rec.state.budgets.findIndex((b) => b.maxLatencyMs !== undefined);
    const field = `budgets[${Math.max(0, index)}]`;
    const until = Date.now() + 120_000;
    let delay = 250;
    for (;;) {
      try {
        const got = await source.resolve(
          {
            device: ref.deviceId,
            backend: ref.backend,
            batchSize: ref.batchSize,
            version: ref.version,
          },
          network,
          field,
        );
        if (got.ref.version !== ref.version || got.ref.fingerprint !== ref.fingerprint) {
          throw new SearchFailure(
            `${what} changed: ${source.description} now serves version ${got.ref.version} with network fingerprint ${got.ref.fingerprint}`,
          );
        }
        return got.predictor;
      } catch (err) {
        if (err instanceof SearchFailure || signal.aborted) throw err;
        if (err instanceof UnavailableError && Date.now() < until) {
          this.logger.warn('fetching the latency table failed; retrying', {
            searchId: rec.searchId,
            err,
          });
          await sleep(delay, undefined, { signal });
          delay = Math.min(delay * 2, 5000);
          continue;
        }
        throw new SearchFailure(
          `${what} cannot be fetched from ${source.description}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  }

  async get(id: string): Promise<controller.Search> {
    const s = await this.o.store.get(requireId(id));
    if (!s) throw new NotFoundError(`search "${id}" not found`);
    return this.toSearch(s.record, true);
  }

  /** GetEvaluations: what the evaluation memo holds for encodings of a search's network. */
  async evaluations(
    req: controller.GetEvaluationsRequest,
  ): Promise<controller.GetEvaluationsResponse> {
    const s = await this.o.store.get(requireId(req.searchId));
    if (!s) throw new NotFoundError(`search "${req.searchId}" not found`);
    return memoizedEvaluations(s.record, req.encodings, this.o.memo);
  }

  async list(req: controller.ListSearchesRequest): Promise<controller.ListSearchesResponse> {
    const pageSize = requireNumber('pageSize', req.pageSize || 50, {
      min: 1,
      max: 1000,
      integer: true,
    });
    let offset = 0;
    if (req.pageToken) {
      // base64url decoding skips what it does not understand: the token must re-encode to
      // itself and hold a positive offset, or it was not ours
      const text = Buffer.from(req.pageToken, 'base64url').toString('utf8');
      const n = Number(text);
      if (
        !/^[1-9][0-9]{0,15}$/.test(text) ||
        Buffer.from(text).toString('base64url') !== req.pageToken ||
        !Number.isSafeInteger(n)
      ) {
        throw new InvalidArgumentError('pageToken', 'is not a token returned by ListSearches');
      }
      offset = n;
    }
    const known = Object.values(controller.SearchState).filter(
      (v): v is controller.SearchState => typeof v === 'number' && v >= 0,
    );
    if (!known.includes(req.state)) {
      throw new InvalidArgumentError(
        'state',
        `${req.state} is not a search state (allowed ${known.join(', ')}; 0 for all)`,
      );
    }
    let all = await this.o.store.list();
    if (req.state !== controller.SearchState.UNSPECIFIED) {
      all = all.filter((r) => STATE_ENUM[r.status] === req.state);
    }
    all.sort(
      (a, b) => b.createTime.localeCompare(a.createTime) || b.searchId.localeCompare(a.searchId),
    );
    const page = all.slice(offset, offset + pageSize);
    const next = offset + pageSize < all.length ? offset + pageSize : 0;
    return {
      searches: page.map((r) => this.toSearch(r, false)),
      nextPageToken: next ? Buffer.from(String(next)).toString('base64url') : '',
    };
  }

  async cancel(id: string): Promise<controller.Search> {
    requireId(id);
    const entry = this.running.get(id);
    if (entry) {
      entry.stopReason = 'cancel';
      entry.abort.abort(new CancelledError(`search ${id} cancelled`));
      await entry.done;
    }
    for (let i = 0; i < 20; i++) {
      const s = await this.o.store.get(id);
      if (!s) throw new NotFoundError(`search "${id}" not found`);
      if (TERMINAL.has(s.record.status)) return this.toSearch(s.record, true);
      transition(s.record, 'CANCELLED');
      try {
        await this.o.store.update(s.record, s.revision);
        this.logger.info('search cancelled', { searchId: id });
        return this.toSearch(s.record, true);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new FailedPreconditionError(`search ${id} keeps changing; try again`);
  }

  /**
   * Progress of a search: the current snapshot, then one per change (every generation,
   * state changes, and live progress inside a generation), ending after a terminal state.
   */
  async *watch(id: string, signal: AbortSignal): AsyncIterable<controller.SearchProgress> {
    requireId(id);
    const first = await this.o.store.get(id);
    if (!first) throw new NotFoundError(`search "${id}" not found`);
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const q = new AsyncQueue<{ rec?: SearchRecord; live?: LiveProgress }>();
    const unsubscribe = this.bus.subscribe(id, (live) => q.push({ live }));
    void (async () => {
      try {
        for await (const rec of this.o.store.watch(id, ac.signal)) q.push({ rec });
        q.end();
      } catch (err) {
        q.end(err);
      }
    })();
    ac.signal.addEventListener('abort', () => q.end(), { once: true });
    let last: SearchRecord = first.record;
    try {
      yield this.progressOf(last, this.running.get(id)?.live);
      if (TERMINAL.has(last.status)) return;
      for await (const item of q) {
        if (item.rec) {
          last = item.rec;
          yield this.progressOf(last);
          if (TERMINAL.has(last.status)) return;
        } else if (item.live && item.live.generation === last.state.generation) {
          yield this.progressOf(last, item.live);
        }
      }
    } finally {
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      ac.abort();
    }
  }

  /** Stops every local runner without changing stored state (they resume on restart). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.running.values()];
    for (const r of all) {
      r.stopReason ??= 'shutdown';
      r.abort.abort(new CancelledError('controller shutting down'));
    }
    await Promise.all(all.map((r) => r.done));
  }

  /** Ids of the searches this process is running. */
  runningIds(): string[] {
    return [...this.running.keys()];
  }

  // -------------------------------------------------------------------------------------

  private candidateOf(rec: SearchRecord, ctx: PoolContext, e: Evaluated): controller.Candidate {
    return controller.Candidate.fromPartial({
      encoding: { genes: [...e.encoding] },
      macs: e.cost.macs,
      params: e.cost.params,
      top1: e.top1,
      generation: rec.generationOf[encodingKey(e.encoding)] ?? 0,
      evaluationId: jobIdOf(ctx, e.encoding),
      ...(e.cost.latencyMs !== undefined ? { predictedLatencyMs: e.cost.latencyMs } : {}),
    });
  }

  progressOf(rec: SearchRecord, live?: LiveProgress): controller.SearchProgress {
    const { ctx } = searchContextOf(rec);
    const bests = bestPerBudget(rec.state);
    const request = controller.StartSearchRequest.fromJSON(rec.request);
    const evaluated = Object.values(rec.state.tested).filter((t) => t.top1 !== null).length;
    const gen = rec.state.generation;
    const total = rec.state.params.generations;
    let eta = 0;
    if (!TERMINAL.has(rec.status) && gen > 0) {
      const perGen = rec.activeMs / gen;
      const entry = this.running.get(rec.searchId);
      const into = entry ? Date.now() - entry.generationStartedAt : 0;
      eta = Math.max(0, (perGen * (total - gen) - into) / 1000);
    }
    const isLive = live !== undefined && live.generation === gen && !TERMINAL.has(rec.status);
    return controller.SearchProgress.fromPartial({
      searchId: rec.searchId,
      state: STATE_ENUM[rec.status],
      generation: gen,
      generations: total,
      evaluated,
      rejected: rec.rejected,
      failed: rec.failed,
      best: bests.map((b, i) =>
        controller.BudgetBest.fromPartial({
          budgetIndex: i,
          budget: request.budgets[i],
          ...(b ? { best: this.candidateOf(rec, ctx, b) } : {}),
        }),
      ),
      time: new Date(),
      generationDone: isLive ? live.done : 0,
      generationSize: isLive ? live.size : 0,
      etaSeconds: eta,
      memoHits: isLive ? live.memoHits : rec.memoHits,
    });
  }

  toSearch(rec: SearchRecord, withPareto: boolean): controller.Search {
    const { ctx } = searchContextOf(rec);
    return controller.Search.fromPartial({
      searchId: rec.searchId,
      request: controller.StartSearchRequest.fromJSON(rec.request),
      progress: this.progressOf(rec, this.running.get(rec.searchId)?.live),
      paretoFront: withPareto
        ? searchPareto(rec.state).map((e) => this.candidateOf(rec, ctx, e))
        : [],
      error: rec.error,
      createTime: new Date(rec.createTime),
      ...(rec.endTime ? { endTime: new Date(rec.endTime) } : {}),
    });
  }
}

function requireId(id: string): string {
  if (!id) throw new InvalidArgumentError('searchId', 'is required');
  if (id.length > 128) throw new InvalidArgumentError('searchId', 'at most 128 characters');
  // ids are "s<time>-<hex>"; anything else cannot name a search (nor a storage key)
  if (!/^[A-Za-z0-9_-]+$/.test(id)) {
    throw new InvalidArgumentError('searchId', 'is not a search id (letters, digits, _ and -)');
  }
  return id;
}

function lastFailure(rec: SearchRecord): string | undefined {
  let last: string | undefined;
  for (const t of Object.values(rec.state.tested)) if (t.failed) last = t.failed;
  return last;
}

function describeSpec(spec: common.NetworkSpec): string {
  try {
    const n = networkFromProto(spec);
    return `${n.spec.family}/${n.spec.preset} width ${n.spec.width} input ${n.spec.inputSize}x${n.spec.inputSize}x${n.spec.inputChannels} classes ${n.spec.numClasses}`;
  } catch {
    return JSON.stringify(common.NetworkSpec.toJSON(spec));
  }
}
