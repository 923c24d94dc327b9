/**
 * The evaluator pool worker: one job at a time from the shared durable pull consumer.
 *
 * Per job: skip it if a result is already stored (a redelivery after a crash between
 * publish and ack); count the attempt in KV (so attempts survive broker restarts, which
 * reset the server's redelivery counter) and record it FAILED once the attempts are spent;
 * otherwise fetch the weights, evaluate while sending in-progress heartbeats, publish the
 * result with Nats-Msg-Id = job id (a duplicate is dropped by the stream), then ack.
 * Transient failures are handed back (nak with a growing delay); permanent ones and the
 * last attempt are published as FAILED results.
 */
import { hostname } from 'node:os';
import { costModel, ValidationError, validateEncoding } from '@metaprune/core';
import { evaluation } from '@metaprune/proto';
import {
  consumeSpan,
  createMetrics,
  type EvaluationOutcome,
  ensureDurableConsumer,
  keepWorking,
  type Logger,
  nullLogger,
  openKv,
  publishWithMsgId,
  SPAN_NAMES,
  TELEMETRY_ATTRS,
  withSpan,
} from '@metaprune/runtime';
import {
  DEFAULT_QUEUE_STREAMS,
  decodeJob,
  encodeResult,
  ensureEvaluationStreams,
  evaluationEventSubject,
  expectedOf,
  failedResult,
  isJobId,
  JOBS_FILTER,
  JOBS_STREAM,
  jobProblem,
  lookupResult,
  NATS_NAMES,
  networkFromProto,
  type QueueStreamSettings,
  RESULTS_STREAM,
  resolveDataSplit,
  resolveEvaluationSettings,
  resultMsgId,
  resultProblem,
  resultSubject,
} from '@metaprune/wire';
import {
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Span } from '@opentelemetry/api';
import {
  type CandidateEvaluator,
  type EvaluationScore,
  PermanentEvaluationError,
  type WeightSource,
} from './types.js';

export interface EvaluatorWorkerOptions {
  nc: NatsConnection;
  evaluator: CandidateEvaluator;
  weights: WeightSource;
  /** Reported in results and events (default host:pid). */
  id?: string;
  logger?: Logger;
  /** Consumer ack wait: an unacked job without heartbeats is redelivered after this. */
  ackWaitMs: number;
  /** In-progress heartbeat interval (default ackWaitMs / 3). */
  heartbeatMs?: number;
  /** Evaluations of one job before it is recorded as FAILED (default 3). */
  maxAttempts?: number;
  /** Consumer max deliveries, the broker's backstop (default maxAttempts + 2). */
  maxDeliver?: number;
  /** How long one pull waits for a job (default 2000 ms; bounds how fast stop() is). */
  pullExpiresMs?: number;
  /** Base delay before a transiently failed job is redelivered, times the attempt (default 1000). */
  retryDelayMs?: number;
  /** How long attempt counters are kept (default 24 h). */
  attemptsTtlMs?: number;
  streams?: QueueStreamSettings;
  /** Called after every handled job (tests, metrics). */
  onJob?: (event: JobEvent) => void;
}

export type JobOutcome =
  | 'succeeded'
  | 'failed'
  | 'retry'
  | 'already-done'
  | 'gave-up'
  | 'handed-back'
  | 'dropped';

export interface JobEvent {
  jobId: string;
  outcome: JobOutcome;
  attempt: number;
  ms: number;
  error?: string;
}

export interface WorkerStats {
  succeeded: number;
  failed: number;
  retried: number;
  skipped: number;
  handedBack: number;
}

class TransientEvaluationError extends Error {
  override readonly name = 'TransientEvaluationError';
  constructor(
    readonly reason: evaluation.FailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface GrpcLikeError {
  code: number;
  details: string;
}
function isGrpcError(err: unknown): err is GrpcLikeError & Error {
  return (
    err instanceof Error &&
    typeof (err as { code?: unknown }).code === 'number' &&
    typeof (err as { details?: unknown }).details === 'string'
  );
}

// grpc status codes (numeric, to avoid importing grpc-js here)
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const FAILED_PRECONDITION = 9;
const UNAUTHENTICATED = 16;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);

const METRIC_OUTCOME: Partial<Record<JobOutcome, EvaluationOutcome>> = {
  succeeded: 'ok',
  failed: 'failed',
  'gave-up': 'failed',
  'already-done': 'cached',
  'handed-back': 'cancelled',
};

export class EvaluatorWorker {
  readonly id: string;
  readonly stats: WorkerStats = { succeeded: 0, failed: 0, retried: 0, skipped: 0, handedBack: 0 };
  private readonly o: Required<
    Pick<
      EvaluatorWorkerOptions,
      | 'ackWaitMs'
      | 'heartbeatMs'
      | 'maxAttempts'
      | 'maxDeliver'
      | 'pullExpiresMs'
      | 'retryDelayMs'
      | 'attemptsTtlMs'
    >
  >;
  private readonly logger: Logger;
  private readonly metrics = createMetrics();
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private attemptsKv!: KV;
  private consumer: Consumer | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private current: { jobId: string; abort: AbortController } | undefined;

  constructor(private readonly opts: EvaluatorWorkerOptions) {
    this.id = opts.id ?? `${hostname()}:${process.pid}`;
    this.logger = (opts.logger ?? nullLogger).child({ evaluator: this.id });
    const maxAttempts = opts.maxAttempts ?? 3;
    this.o = {
      ackWaitMs: opts.ackWaitMs,
      heartbeatMs: opts.heartbeatMs ?? Math.max(100, Math.floor(opts.ackWaitMs / 3)),
      maxAttempts,
      maxDeliver: opts.maxDeliver ?? maxAttempts + 2,
      pullExpiresMs: opts.pullExpiresMs ?? 2000,
      retryDelayMs: opts.retryDelayMs ?? 1000,
      attemptsTtlMs: opts.attemptsTtlMs ?? 24 * 60 * 60_000,
    };
    if (this.o.maxDeliver <= maxAttempts) {
      throw new RangeError(
        `maxDeliver (${this.o.maxDeliver}) must exceed maxAttempts (${maxAttempts}) so the last delivery can record the failure`,
      );
    }
  }

  /** Creates streams, the consumer and the attempts bucket; does not start pulling. */
  async prepare(): Promise<void> {
    this.js = jetstream(this.opts.nc);
    this.jsm = await jetstreamManager(this.opts.nc);
    await ensureEvaluationStreams(this.jsm, this.opts.streams ?? DEFAULT_QUEUE_STREAMS);
    await this.ensureConsumer();
    this.attemptsKv = await openKv(this.js, NATS_NAMES.attemptsBucket, {
      ttlMs: this.o.attemptsTtlMs,
    });
  }

  private async ensureConsumer(): Promise<Consumer> {
    await ensureDurableConsumer(this.jsm, JOBS_STREAM, {
      durable: NATS_NAMES.evaluatorsConsumer,
      filterSubject: JOBS_FILTER,
      ackWaitMs: this.o.ackWaitMs,
      maxDeliver: this.o.maxDeliver,
    });
    this.consumer = await this.js.consumers.get(JOBS_STREAM, NATS_NAMES.evaluatorsConsumer);
    return this.consumer;
  }

  /** Starts pulling jobs (after prepare()). */
  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  /**
   * Stops pulling; lets the current job finish for up to `drainTimeoutMs`, then aborts it
   * and hands it back (nak) so another evaluator takes it at once.
   */
  async stop(drainTimeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    if (!this.loop) return;
    const timer = setTimeout(() => {
      if (this.current) {
        this.logger.warn('job did not finish within the drain timeout: handing it back', {
          jobId: this.current.jobId,
        });
        this.current.abort.abort(new Error('evaluator shutting down'));
      }
    }, drainTimeoutMs);
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
  }

  private async run(): Promise<void> {
    let backoff = 200;
    while (!this.stopping) {
      let msg: JsMsg | null;
      try {
        const consumer = this.consumer ?? (await this.ensureConsumer());
        msg = await consumer.next({ expires: this.o.pullExpiresMs });
        backoff = 200;
      } catch (err) {
        if (this.stopping) break;
        this.logger.warn('pulling a job failed; retrying', { err, backoffMs: backoff });
        this.consumer = undefined; // re-create it (e.g. the server lost its state)
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      if (!msg) continue;
      if (this.stopping) {
        msg.nak();
        break;
      }
      await this.handle(msg);
    }
  }

  /** One job in a CONSUMER span joined to the publisher's (the controller's) trace. */
  private handle(msg: JsMsg): Promise<void> {
    return consumeSpan(msg, `process ${JOBS_FILTER}`, (span) => this.handleInSpan(msg, span));
  }

  private async handleInSpan(msg: JsMsg, span: Span): Promise<void> {
    const t0 = performance.now();
    const report = (jobId: string, outcome: JobOutcome, attempt: number, error?: string) => {
      const ms = performance.now() - t0;
      span.setAttributes({
        [TELEMETRY_ATTRS.jobId]: jobId,
        [TELEMETRY_ATTRS.outcome]: outcome,
        'metaprune.evaluation.attempt': attempt,
      });
      const metric = METRIC_OUTCOME[outcome];
      if (metric) this.metrics.recordEvaluation(ms, metric);
      this.opts.onJob?.({ jobId, outcome, attempt, ms, ...(error ? { error } : {}) });
      this.logger.info('job handled', {
        jobId,
        outcome,
        attempt,
        ms: Math.round(ms),
        ...(error ? { error } : {}),
      });
    };
    let job: evaluation.EvaluationJob;
    try {
      job = decodeJob(msg.data);
      if (!isJobId(job.jobId)) throw new Error(`malformed job id ${JSON.stringify(job.jobId)}`);
      // a job whose id is not the digest of its content is forged or garbled: running it
      // would store its score under another candidate's id
      const problem = jobProblem(job);
      if (problem) throw new Error(problem);
    } catch (err) {
      // Nothing to report to (no usable or trustworthy job id): drop it for good. Acked,
      // not terminated: a work-queue stream deletes an acked message, while a terminated one
      // stays stored (nats-server < 2.11) and fills the stream.
      this.logger.error('undecodable or forged job: dropping it', { err, subject: msg.subject });
      await this.ack(msg);
      report('?', 'dropped', msg.info.deliveryCount, String(err));
      return;
    }
    const jobId = job.jobId;
    const log = this.logger.child({ jobId, searchId: job.searchId });
    span.setAttributes({
      [TELEMETRY_ATTRS.searchId]: job.searchId,
      [TELEMETRY_ATTRS.generation]: job.generation,
      [TELEMETRY_ATTRS.pruningNetVersion]: job.pruningnetVersion,
    });

    // A result exists: an earlier delivery published it but did not get to ack.
    try {
      const stored = await lookupResult(this.jsm, jobId);
      const problem = stored && resultProblem(stored, expectedOf(job));
      if (problem) log.warn('ignoring a stored result that does not match the job', { problem });
      else if (stored) {
        await this.ack(msg);
        this.stats.skipped++;
        report(jobId, 'already-done', msg.info.deliveryCount);
        return;
      }
    } catch (err) {
      log.warn('could not look up an existing result; evaluating anyway', { err });
    }

    let attempt: number;
    try {
      attempt = Math.max(await this.bumpAttempts(jobId), msg.info.deliveryCount);
    } catch (err) {
      log.warn('could not count the attempt; using the delivery count', { err });
      attempt = msg.info.deliveryCount;
    }
    if (attempt > this.o.maxAttempts) {
      const why =
        `gave up after ${attempt - 1} attempts: the evaluators that took it crashed, ` +
        'stopped heartbeating or failed transiently each time';
      await this.publishAndAck(
        msg,
        failedResult(job, evaluation.FailureReason.MAX_DELIVERIES_EXCEEDED, why, {
          evaluatorId: this.id,
          deliveryAttempt: attempt,
        }),
        log,
        job.attempt,
      );
      this.stats.failed++;
      report(jobId, 'gave-up', attempt, why);
      return;
    }

    const stopHeartbeat = keepWorking(msg, this.o.heartbeatMs);
    const abort = new AbortController();
    this.current = { jobId, abort };
    try {
      const result = await withSpan(
        SPAN_NAMES.evaluate,
        () => this.evaluate(job, attempt, abort.signal, t0),
        { [TELEMETRY_ATTRS.jobId]: jobId },
      );
      await this.publishAndAck(msg, result, log, job.attempt);
      this.stats.succeeded++;
      report(jobId, 'succeeded', attempt);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (abort.signal.aborted) {
        msg.nak();
        await this.unbumpAttempts(jobId).catch(() => {});
        this.stats.handedBack++;
        report(jobId, 'handed-back', attempt);
        return;
      }
      const permanent = err instanceof PermanentEvaluationError;
      const reason =
        err instanceof PermanentEvaluationError || err instanceof TransientEvaluationError
          ? err.reason
          : evaluation.FailureReason.INTERNAL;
      if (permanent || attempt >= this.o.maxAttempts) {
        log.warn('evaluation failed', { err, permanent, attempt });
        await this.publishAndAck(
          msg,
          failedResult(job, reason, message, { evaluatorId: this.id, deliveryAttempt: attempt }),
          log,
          job.attempt,
        );
        this.stats.failed++;
        report(jobId, 'failed', attempt, message);
      } else {
        log.warn('evaluation failed transiently: handing it back for a retry', { err, attempt });
        msg.nak(this.o.retryDelayMs * attempt);
        this.stats.retried++;
        report(jobId, 'retry', attempt, message);
      }
    } finally {
      stopHeartbeat();
      this.current = undefined;
    }
  }

  private async evaluate(
    job: evaluation.EvaluationJob,
    attempt: number,
    signal: AbortSignal,
    t0: number,
  ): Promise<evaluation.EvaluationResult> {
    let network: ReturnType<typeof networkFromProto>;
    let encoding: readonly number[];
    try {
      if (!job.pruningnetId) throw new ValidationError('job.pruningnetId', 'is required');
      if (!(job.pruningnetVersion >= 1)) {
        throw new ValidationError('job.pruningnetVersion', 'must be >= 1');
      }
      network = networkFromProto(job.network, 'job.network');
      encoding = validateEncoding(network, job.encoding?.genes ?? [], 'job.encoding');
    } catch (err) {
      throw new PermanentEvaluationError(
        evaluation.FailureReason.INVALID_JOB,
        err instanceof Error ? err.message : String(err),
        { cause: err },
      );
    }
    const settings = resolveEvaluationSettings(job.settings);
    const data = resolveDataSplit(job.data);
    let lastEvent = 0;
    const onPhase = (phase: evaluation.EvaluationPhase, progress: number, force = false) => {
      const now = performance.now();
      if (!force && now - lastEvent < 250) return;
      lastEvent = now;
      this.publishEvent(job, phase, progress);
    };
    onPhase(evaluation.EvaluationPhase.WEIGHTS, 0, true);

    const tw = performance.now();
    let weights: Awaited<ReturnType<WeightSource['generate']>>;
    try {
      weights = await this.opts.weights.generate(
        { pruningnetId: job.pruningnetId, version: job.pruningnetVersion, encoding },
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw classifyWeightError(err);
    }
    const weightsMs = performance.now() - tw;

    let score: EvaluationScore;
    try {
      score = await this.opts.evaluator.evaluate({
        job,
        network,
        encoding,
        settings,
        data,
        weights,
        signal,
        onPhase: (phase, progress) => onPhase(phase, progress),
      });
    } catch (err) {
      if (signal.aborted || err instanceof PermanentEvaluationError) throw err;
      if (err instanceof ValidationError) {
        throw new PermanentEvaluationError(evaluation.FailureReason.INVALID_JOB, err.message, {
          cause: err,
        });
      }
      throw new TransientEvaluationError(
        evaluation.FailureReason.INTERNAL,
        err instanceof Error ? err.message : String(err),
        { cause: err },
      );
    }
    if (!Number.isFinite(score.top1) || !Number.isFinite(score.loss)) {
      throw new PermanentEvaluationError(
        evaluation.FailureReason.NUMERICAL_ERROR,
        `non-finite score (top1 ${score.top1}, loss ${score.loss})`,
      );
    }
    onPhase(evaluation.EvaluationPhase.DONE, 1, true);
    const cost = costModel(network).cost(encoding);
    return evaluation.EvaluationResult.fromPartial({
      jobId: job.jobId,
      searchId: job.searchId,
      encoding: job.encoding,
      pruningnetId: job.pruningnetId,
      pruningnetVersion: job.pruningnetVersion,
      status: evaluation.EvaluationStatus.SUCCEEDED,
      top1: score.top1,
      loss: score.loss,
      images: score.images,
      macs: cost.macs,
      params: cost.params,
      ...(score.measuredLatencyMs !== undefined
        ? { measuredLatencyMs: score.measuredLatencyMs }
        : {}),
      timings: {
        weightsMs,
        recalibrationMs: score.recalibrationMs,
        validationMs: score.validationMs,
        totalMs: performance.now() - t0,
      },
      evaluatorId: this.id,
      deliveryAttempt: attempt,
      failureReason: evaluation.FailureReason.UNSPECIFIED,
      finishTime: new Date(),
    });
  }

  private publishEvent(
    job: evaluation.EvaluationJob,
    phase: evaluation.EvaluationPhase,
    progress: number,
  ): void {
    try {
      this.opts.nc.publish(
        evaluationEventSubject(job.jobId),
        evaluation.EvaluationEvent.encode({
          jobId: job.jobId,
          searchId: job.searchId,
          evaluatorId: this.id,
          phase,
          phaseProgress: Math.min(1, Math.max(0, progress)),
          time: new Date(),
        }).finish(),
      );
    } catch {
      // events are best effort
    }
  }

  /** Publishes the result (deduplicated by job id) and then acks the job. */
  private async publishAndAck(
    msg: JsMsg,
    result: evaluation.EvaluationResult,
    log: Logger,
    jobAttempt: number,
  ): Promise<void> {
    let delay = 200;
    for (let i = 0; ; i++) {
      try {
        await publishWithMsgId(
          this.js,
          resultSubject(result.jobId),
          encodeResult(result),
          resultMsgId(result.jobId, jobAttempt),
          { expectStream: RESULTS_STREAM },
        );
        break;
      } catch (err) {
        // Keep the job (heartbeats continue in handle) while NATS is briefly away.
        if (i >= 20) {
          log.error('could not publish the result; the job will be redelivered', { err });
          return;
        }
        log.warn('publishing the result failed; retrying', { err });
        await sleep(delay);
        delay = Math.min(delay * 2, 3000);
      }
    }
    await this.ack(msg);
  }

  private async ack(msg: JsMsg): Promise<void> {
    try {
      await msg.ackAck({ timeout: 5000 });
    } catch (err) {
      // The result is stored; a redelivery will find it and ack then.
      this.logger.warn('ack failed; a redelivery will see the stored result', { err });
    }
  }

  private async bumpAttempts(jobId: string): Promise<number> {
    for (let i = 0; i < 20; i++) {
      const e = await this.attemptsKv.get(jobId);
      try {
        if (e?.operation !== 'PUT') {
          await this.attemptsKv.create(jobId, enc('1'));
          return 1;
        }
        const n = (Number(e.string()) || 0) + 1;
        await this.attemptsKv.update(jobId, enc(String(n)), e.revision);
        return n;
      } catch {
        // lost a race with another evaluator: read again
      }
    }
    throw new Error(`could not update the attempt counter of ${jobId}`);
  }

  private async unbumpAttempts(jobId: string): Promise<void> {
    const e = await this.attemptsKv.get(jobId);
    if (e?.operation !== 'PUT') return;
    const n = Math.max(0, (Number(e.string()) || 0) - 1);
    await this.attemptsKv.update(jobId, enc(String(n)), e.revision);
  }
}

function classifyWeightError(err: unknown): Error {
  const message = `weights unavailable: ${err instanceof Error ? err.message : String(err)}`;
  if (isGrpcError(err)) {
    if (err.code === INVALID_ARGUMENT) {
      return new PermanentEvaluationError(evaluation.FailureReason.INVALID_JOB, message, {
        cause: err,
      });
    }
    if (
      err.code === NOT_FOUND ||
      err.code === FAILED_PRECONDITION ||
      err.code === PERMISSION_DENIED ||
      err.code === UNAUTHENTICATED
    ) {
      return new PermanentEvaluationError(evaluation.FailureReason.WEIGHTS_UNAVAILABLE, message, {
        cause: err,
      });
    }
  }
  return new TransientEvaluationError(evaluation.FailureReason.WEIGHTS_UNAVAILABLE, message, {
    cause: err,
  });
}
