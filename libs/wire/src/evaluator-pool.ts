/**
 * Evaluator pools for core's runSearch: the same controller code scores candidates
 * in-process (unit tests) or through the NATS JetStream evaluator pool (production).
 *
 * Both go through the evaluation memo first: a candidate already scored with the same
 * PruningNet version, network, settings and data (by any search) is not evaluated again.
 */
import type { Candidate, Encoding, EvaluatorPool, Network, Outcome } from '@metaprune/core';
import { type common, evaluation } from '@metaprune/proto';
import {
  type Logger,
  nullLogger,
  publishWithMsgId,
  publishWithMsgIdTraced,
  TELEMETRY_ATTRS,
} from '@metaprune/runtime';
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  DEFAULT_QUEUE_STREAMS,
  decodeJob,
  decodeResult,
  encodeJob,
  encodeResult,
  ensureEvaluationStreams,
  evaluationJobId,
  failedResult,
  JOBS_FILTER,
  JOBS_STREAM,
  jobSubject,
  lookupPendingJob,
  lookupResult,
  maxDeliveriesAdvisorySubject,
  type QueueStreamSettings,
  RESULTS_FILTER,
  RESULTS_STREAM,
  type ResolvedDataSplit,
  type ResolvedEvaluationSettings,
  resultSubject,
} from './evaluation.js';
import { isAccuracy, resultProblem } from './integrity.js';
import type { MemoEntry, MemoStore } from './memo.js';

/** What a search's candidates are scored against. */
export interface PoolContext {
  searchId: string;
  pruningnetId: string;
  pruningnetVersion: number;
  network: Network;
  networkProto: common.NetworkSpec;
  settings: ResolvedEvaluationSettings;
  data: ResolvedDataSplit;
}

export interface PoolHooks {
  /** Generation being evaluated (0-based), stamped on jobs. */
  generation(): number;
  /** Outcomes so far of the current evaluate() call. */
  onProgress?(done: number, total: number, memoHits: number): void;
}

export interface PoolFactory {
  create(ctx: PoolContext, hooks: PoolHooks): EvaluatorPool;
}

export function jobIdOf(ctx: PoolContext, encoding: Encoding): string {
  return evaluationJobId({
    pruningnetId: ctx.pruningnetId,
    pruningnetVersion: ctx.pruningnetVersion,
    network: ctx.network,
    encoding,
    settings: ctx.settings,
    data: ctx.data,
  });
}

const reasonName = (r: evaluation.FailureReason): string =>
  evaluation.failureReasonToJSON(r).replace(/^FAILURE_REASON_/, '');

/** Outcome of a stored result (FAILED results become failed outcomes with their reason). */
export function outcomeOf(r: evaluation.EvaluationResult): Outcome {
  if (r.status === evaluation.EvaluationStatus.SUCCEEDED && Number.isFinite(r.top1)) {
    return { top1: r.top1 };
  }
  return { failed: `${reasonName(r.failureReason)}: ${r.error || 'evaluation failed'}` };
}

export function memoEntryOf(r: evaluation.EvaluationResult): MemoEntry {
  return {
    top1: r.top1,
    loss: r.loss,
    macs: r.macs,
    params: r.params,
    images: r.images,
    evaluatorId: r.evaluatorId,
    time: (r.finishTime ?? new Date()).toISOString(),
  };
}

// ---------------------------------------------------------------------------------------

/** Scores a candidate in this process (unit tests, single-process use). */
export type InProcessScorer = (
  ctx: PoolContext,
  encoding: Encoding,
  signal?: AbortSignal,
) => Promise<number>;

export class InProcessPoolFactory implements PoolFactory {
  /** Encodings actually scored (memo misses), by job id: what a test can count. */
  readonly scored = new Map<string, number>();

  constructor(
    private readonly scorer: InProcessScorer,
    private readonly memo: MemoStore,
  ) {}

  create(ctx: PoolContext, hooks: PoolHooks): EvaluatorPool {
    return {
      evaluate: async (candidates: readonly Candidate[], signal?: AbortSignal) => {
        let done = 0;
        let hits = 0;
        const out: Outcome[] = [];
        for (const c of candidates) {
          signal?.throwIfAborted();
          const id = jobIdOf(ctx, c.encoding);
          const memo = await this.memo.get(id);
          if (memo && isAccuracy(memo.top1)) {
            hits++;
            out.push({ top1: memo.top1 });
          } else {
            try {
              const top1 = await this.scorer(ctx, c.encoding, signal);
              this.scored.set(id, (this.scored.get(id) ?? 0) + 1);
              await this.memo.put(id, {
                top1,
                loss: 0,
                macs: c.cost.macs,
                params: c.cost.params,
                images: 0,
                evaluatorId: 'in-process',
                time: new Date().toISOString(),
              });
              out.push({ top1 });
            } catch (err) {
              signal?.throwIfAborted();
              out.push({ failed: err instanceof Error ? err.message : String(err) });
            }
          }
          hooks.onProgress?.(++done, candidates.length, hits);
        }
        return out;
      },
    };
  }
}

// ---------------------------------------------------------------------------------------

export interface NatsEvaluationOptions {
  nc: NatsConnection;
  memo: MemoStore;
  logger?: Logger;
  streams?: QueueStreamSettings;
  /** How often outstanding jobs are checked for missed results and lost jobs (default 5 s). */
  stallCheckMs?: number;
  /** A job queued this long without a result is recorded FAILED (0 = never). */
  deadJobTimeoutMs?: number;
}

interface Waiter {
  settle(result: evaluation.EvaluationResult): void;
}

/**
 * The controller side of the evaluation queue, one per process: a subscription to every
 * result, the max-deliveries advisory (dead jobs become FAILED results), and a pool per
 * search that publishes jobs and waits for their results.
 */
export class NatsEvaluation implements PoolFactory {
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly subs: Subscription[] = [];
  private readonly logger: Logger;
  private readonly stallCheckMs: number;
  private readonly deadJobTimeoutMs: number;
  /** Jobs published (or republished) by this process: test and bench introspection. */
  published = 0;
  /** Results refused as not answering their job (forged or garbled). */
  refusedResults = 0;

  constructor(private readonly o: NatsEvaluationOptions) {
    this.logger = o.logger ?? nullLogger;
    this.stallCheckMs = o.stallCheckMs ?? 5000;
    this.deadJobTimeoutMs = o.deadJobTimeoutMs ?? 0;
  }

  async start(): Promise<void> {
    this.js = jetstream(this.o.nc);
    this.jsm = await jetstreamManager(this.o.nc);
    await ensureEvaluationStreams(this.jsm, this.o.streams ?? DEFAULT_QUEUE_STREAMS);
    const results = this.o.nc.subscribe(RESULTS_FILTER, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.dispatch(decodeResult(msg.data));
        } catch (e) {
          this.logger.warn('undecodable evaluation result', { err: e, subject: msg.subject });
        }
      },
    });
    const advisories = this.o.nc.subscribe(maxDeliveriesAdvisorySubject(), {
      callback: (err, msg) => {
        if (err) return;
        try {
          const a = msg.json<{ stream_seq?: number }>();
          if (typeof a.stream_seq === 'number') void this.deadLetter(a.stream_seq);
        } catch (e) {
          this.logger.warn('undecodable max-deliveries advisory', { err: e });
        }
      },
    });
    this.subs.push(results, advisories);
    await this.o.nc.flush();
  }

  close(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
  }

  private dispatch(result: evaluation.EvaluationResult): void {
    const set = this.waiters.get(result.jobId);
    if (!set) return;
    for (const w of [...set]) w.settle(result);
  }

  /** A job the broker gave up on: record it FAILED (once, deduplicated) and remove it. */
  private async deadLetter(seq: number): Promise<void> {
    try {
      const m = await this.jsm.streams.getMessage(JOBS_STREAM, { seq });
      if (!m) return;
      const job = decodeJob(m.data);
      await this.publishFailure(
        job,
        evaluation.FailureReason.MAX_DELIVERIES_EXCEEDED,
        'the job reached the maximum deliveries without a result (evaluators crashed or stopped heartbeating)',
      );
      await this.jsm.streams.deleteMessage(JOBS_STREAM, seq).catch(() => false);
      this.logger.warn('job exceeded its deliveries: recorded as failed', {
        jobId: job.jobId,
        seq,
      });
    } catch (err) {
      this.logger.warn('could not dead-letter a job', { err, seq });
    }
  }

  private async publishFailure(
    job: evaluation.EvaluationJob,
    reason: evaluation.FailureReason,
    message: string,
  ): Promise<void> {
    const r = failedResult(job, reason, message, { evaluatorId: 'controller' });
    await publishWithMsgId(this.js, resultSubject(job.jobId), encodeResult(r), job.jobId, {
      expectStream: RESULTS_STREAM,
    });
  }

  create(ctx: PoolContext, hooks: PoolHooks): EvaluatorPool {
    return { evaluate: (candidates, signal) => this.evaluate(ctx, hooks, candidates, signal) };
  }

  private async evaluate(
    ctx: PoolContext,
    hooks: PoolHooks,
    candidates: readonly Candidate[],
    signal?: AbortSignal,
  ): Promise<Outcome[]> {
    signal?.throwIfAborted();
    const total = candidates.length;
    const ids = candidates.map((c) => jobIdOf(ctx, c.encoding));
    const outcomes: (Outcome | undefined)[] = new Array(total).fill(undefined);
    let done = 0;
    let hits = 0;
    // Nothing is reported before the memo AND the stored results have been read: a
    // controller restarted mid-generation must not report fewer candidates done than its
    // predecessor did (a result whose memo write was cut short by the kill is only in the
    // results stream), or watchers would see progress go backwards.
    let quiet = true;
    const progress = (): void => {
      if (!quiet) hooks.onProgress?.(done, total, hits);
    };

    // 1. the memo (any earlier search on this PruningNet version and settings)
    const memo = await Promise.all(ids.map((id) => this.o.memo.get(id).catch(() => undefined)));
    memo.forEach((m, i) => {
      // an entry that cannot be an accuracy (tampered memo bucket) is a miss, not a score
      if (m && !isAccuracy(m.top1)) {
        this.logger.warn('ignoring an invalid memo entry', { jobId: ids[i], top1: m.top1 });
      } else if (m) {
        outcomes[i] = { top1: m.top1 };
        done++;
        hits++;
      }
    });

    // 2. wait for the rest: register first, then look for stored results, then publish
    const pending = new Map<string, { index: number[]; candidate: Candidate; attempt: number }>();
    ids.forEach((id, i) => {
      if (outcomes[i]) return;
      const p = pending.get(id);
      if (p) p.index.push(i);
      else pending.set(id, { index: [i], candidate: candidates[i]!, attempt: 1 });
    });
    if (pending.size === 0) {
      quiet = false;
      progress();
      return outcomes as Outcome[];
    }

    const generation = hooks.generation();
    let finish!: () => void;
    let fail!: (err: unknown) => void;
    const allDone = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    const memoWrites: Promise<unknown>[] = [];
    // a result counts only if it answers the job as published (see evaluator/integrity.ts)
    const refused = (id: string, result: evaluation.EvaluationResult): boolean => {
      const p = pending.get(id);
      if (!p) return false;
      const problem = resultProblem(result, {
        jobId: id,
        pruningnetId: ctx.pruningnetId,
        pruningnetVersion: ctx.pruningnetVersion,
        genes: p.candidate.encoding,
      });
      if (!problem) return false;
      this.refusedResults++;
      this.logger.warn('refusing an evaluation result that does not match its job', {
        jobId: id,
        searchId: ctx.searchId,
        problem,
      });
      return true;
    };
    const settle = (id: string, result: evaluation.EvaluationResult): void => {
      const p = pending.get(id);
      if (!p || refused(id, result)) return;
      pending.delete(id);
      this.unregister(id, waiter);
      const o = outcomeOf(result);
      for (const i of p.index) outcomes[i] = o;
      done += p.index.length;
      if ('top1' in o) {
        memoWrites.push(this.o.memo.put(id, memoEntryOf(result)).catch(() => {}));
      }
      progress();
      if (pending.size === 0) finish();
    };
    const waiter: Waiter = { settle: (r) => settle(r.jobId, r) };
    for (const id of pending.keys()) this.register(id, waiter);

    const onAbort = (): void => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      const jobOf = (id: string, c: Candidate, attempt: number): evaluation.EvaluationJob =>
        evaluation.EvaluationJob.fromPartial({
          jobId: id,
          searchId: ctx.searchId,
          pruningnetId: ctx.pruningnetId,
          pruningnetVersion: ctx.pruningnetVersion,
          network: ctx.networkProto,
          encoding: { genes: [...c.encoding] },
          settings: ctx.settings,
          attempt,
          generation,
          createTime: new Date(),
          data: ctx.data,
        });
      const publish = async (id: string, c: Candidate, attempt: number): Promise<void> => {
        const msgId = attempt === 1 ? id : `${id}.r${attempt}`;
        try {
          await publishWithMsgIdTraced(
            this.js,
            jobSubject(id),
            encodeJob(jobOf(id, c, attempt)),
            msgId,
            {
              expectStream: JOBS_STREAM,
              spanName: `publish ${JOBS_FILTER}`,
              attributes: {
                [TELEMETRY_ATTRS.jobId]: id,
                [TELEMETRY_ATTRS.searchId]: ctx.searchId,
                [TELEMETRY_ATTRS.generation]: generation,
                [TELEMETRY_ATTRS.pruningNetVersion]: ctx.pruningnetVersion,
              },
            },
          );
          this.published++;
        } catch (err) {
          // the stall check republishes it
          this.logger.warn('publishing a job failed; will retry', { err, jobId: id });
        }
      };

      // results stored before we registered (another search, or before a controller restart)
      await Promise.all(
        [...pending.keys()].map(async (id) => {
          const r = await lookupResult(this.jsm, id).catch(() => undefined);
          if (r && !refused(id, r)) settle(id, r);
        }),
      );
      quiet = false;
      progress();
      await Promise.all([...pending].map(([id, p]) => publish(id, p.candidate, 1)));
      if (pending.size === 0) finish();

      const queuedSince = new Map<string, number>();
      const missing = new Map<string, number>();
      const check = async (): Promise<void> => {
        for (const [id, p] of [...pending]) {
          if (signal?.aborted) return;
          try {
            const r = await lookupResult(this.jsm, id);
            if (r && !refused(id, r)) {
              settle(id, r);
              continue;
            }
            const queued = await lookupPendingJob(this.jsm, id);
            if (queued) {
              missing.delete(id);
              const since = queuedSince.get(id) ?? Date.now();
              queuedSince.set(id, since);
              if (this.deadJobTimeoutMs > 0 && Date.now() - since > this.deadJobTimeoutMs) {
                await this.publishFailure(
                  queued.job,
                  evaluation.FailureReason.MAX_DELIVERIES_EXCEEDED,
                  `no result within the dead-job timeout of ${this.deadJobTimeoutMs} ms`,
                );
                await this.jsm.streams.deleteMessage(JOBS_STREAM, queued.seq).catch(() => false);
              }
              continue;
            }
            const again = await lookupResult(this.jsm, id);
            if (again && !refused(id, again)) {
              settle(id, again);
              continue;
            }
            // neither queued nor answered: lost (never stored, or purged). Republish after
            // seeing it missing twice, so an ack racing with our look-ups is not mistaken.
            const n = (missing.get(id) ?? 0) + 1;
            missing.set(id, n);
            if (n >= 2) {
              missing.delete(id);
              p.attempt++;
              this.logger.warn('job lost: republishing', { jobId: id, attempt: p.attempt });
              await publish(id, p.candidate, p.attempt);
            }
          } catch (err) {
            this.logger.debug('stall check failed', { err, jobId: id });
          }
        }
      };
      let checking = false;
      timer = setInterval(() => {
        if (checking) return;
        checking = true;
        void check().finally(() => {
          checking = false;
        });
      }, this.stallCheckMs);
      await allDone;
      await Promise.all(memoWrites);
      return outcomes as Outcome[];
    } finally {
      if (timer) clearInterval(timer);
      signal?.removeEventListener('abort', onAbort);
      for (const id of pending.keys()) this.unregister(id, waiter);
    }
  }

  private register(id: string, w: Waiter): void {
    let set = this.waiters.get(id);
    if (!set) {
      set = new Set();
      this.waiters.set(id, set);
    }
    set.add(w);
  }

  private unregister(id: string, w: Waiter): void {
    const set = this.waiters.get(id);
    if (!set) return;
    set.delete(w);
    if (set.size === 0) this.waiters.delete(id);
  }
}
