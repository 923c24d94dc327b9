/**
 * The evaluation queue's wire protocol, shared by the controller (publisher of jobs, reader
 * of results) and the evaluators (workers): subjects, stream set-up, deterministic job ids,
 * codecs and look-ups. Nothing here loads a tensor library.
 *
 * - Jobs: work-queue stream `METAPRUNE_EVAL_JOBS`, one subject per job
 *   (`metaprune.eval.jobs.<jobId>`), Nats-Msg-Id = job id, so a job published twice within
 *   the duplicate window is stored once. Evaluators share the durable pull consumer
 *   `evaluators` (explicit ack, bounded deliveries).
 * - Results: limits stream `METAPRUNE_EVAL_RESULTS`, one subject per job
 *   (`metaprune.eval.results.<jobId>`), Nats-Msg-Id = job id, so a result is stored once even
 *   when two evaluators finish the same job. Anyone can look a result up by its subject.
 * - The job id is a hash of everything that determines the score (PruningNet id + version,
 *   network, encoding, evaluation settings, data split), so it doubles as the memo key.
 */
import { createHash } from 'node:crypto';
import { type Encoding, type Network, resolveSpec } from '@metaprune/core';
import { type common, evaluation } from '@metaprune/proto';
import { ensureWorkQueueStream, requireNumber } from '@metaprune/runtime';
import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { NATS_NAMES } from './names.js';

/** Settings of the two streams; controller and evaluators must agree (same defaults). */
export interface QueueStreamSettings {
  /** Window in which a job published again with the same id is dropped. */
  jobsDuplicateWindowMs: number;
  /** How long results are kept (they are also the source of truth for memo misses). */
  resultsMaxAgeMs: number;
  /** Window in which a second result for the same job id is dropped. */
  resultsDuplicateWindowMs: number;
}

export const DEFAULT_QUEUE_STREAMS: QueueStreamSettings = Object.freeze({
  jobsDuplicateWindowMs: 60 * 60_000,
  resultsMaxAgeMs: 7 * 24 * 60 * 60_000,
  resultsDuplicateWindowMs: 60 * 60_000,
});

export const JOBS_STREAM = NATS_NAMES.jobsStream;
export const RESULTS_STREAM = NATS_NAMES.resultsStream;
export const JOBS_FILTER = `${NATS_NAMES.jobsSubjectPrefix}.>`;
export const RESULTS_FILTER = `${NATS_NAMES.resultsSubjectPrefix}.>`;

/** Job ids are lowercase hex with a prefix: safe as subject tokens and KV keys. */
const JOB_ID = /^e[0-9a-f]{40}$/;

export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

export function jobSubject(jobId: string): string {
  return `${NATS_NAMES.jobsSubjectPrefix}.${jobId}`;
}

export function resultSubject(jobId: string): string {
  return `${NATS_NAMES.resultsSubjectPrefix}.${jobId}`;
}

/** Core-NATS subject of an evaluation's progress events (observability only). */
export function evaluationEventSubject(jobId: string): string {
  return `${NATS_NAMES.eventsSubjectPrefix}.evaluation.${jobId}`;
}

/** Advisory the server publishes when a job reached the consumer's max deliveries. */
export function maxDeliveriesAdvisorySubject(
  stream = JOBS_STREAM,
  consumer: string = NATS_NAMES.evaluatorsConsumer,
): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`;
}

const STREAM_NOT_FOUND = 10059;

/** Creates (or updates to match) the limits-retention results stream. */
export async function ensureResultsStream(
  jsm: JetStreamManager,
  settings: QueueStreamSettings = DEFAULT_QUEUE_STREAMS,
): Promise<StreamInfo> {
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: RESULTS_STREAM,
    subjects: [RESULTS_FILTER],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(settings.resultsMaxAgeMs),
    duplicate_window: nanos(settings.resultsDuplicateWindowMs),
    num_replicas: 1,
  };
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(RESULTS_STREAM);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND)) throw err;
    try {
      return await jsm.streams.add(wanted);
    } catch (addErr) {
      try {
        info = await jsm.streams.info(RESULTS_STREAM);
      } catch {
        throw addErr;
      }
    }
  }
  const cfg = info.config;
  if (cfg.max_age === wanted.max_age && cfg.duplicate_window === wanted.duplicate_window) {
    return info;
  }
  return jsm.streams.update(RESULTS_STREAM, {
    ...cfg,
    max_age: wanted.max_age!,
    duplicate_window: wanted.duplicate_window!,
  });
}

/** Creates / updates both streams of the evaluation queue. Idempotent, concurrent-safe. */
export async function ensureEvaluationStreams(
  jsm: JetStreamManager,
  settings: QueueStreamSettings = DEFAULT_QUEUE_STREAMS,
): Promise<void> {
  await ensureWorkQueueStream(jsm, {
    name: JOBS_STREAM,
    subjects: [JOBS_FILTER],
    duplicateWindowMs: settings.jobsDuplicateWindowMs,
  });
  await ensureResultsStream(jsm, settings);
}

// ---------------------------------------------------------------------------------------
// Settings

/** EvaluationSettings with defaults filled in (batch size 0 → 128). */
export interface ResolvedEvaluationSettings {
  recalibrationBatches: number;
  batchSize: number;
  /** 0 = the whole held-out split. */
  validationImages: number;
  seed: number;
}

export const DEFAULT_EVAL_BATCH_SIZE = 128;

export function resolveEvaluationSettings(
  s: common.EvaluationSettings | undefined,
): ResolvedEvaluationSettings {
  return {
    recalibrationBatches: s?.recalibrationBatches ?? 0,
    batchSize: s?.batchSize ? s.batchSize : DEFAULT_EVAL_BATCH_SIZE,
    validationImages: s?.validationImages ?? 0,
    seed: s?.seed ?? 0,
  };
}

/**
 * Evaluation settings from a request: each field range-checked (InvalidArgumentError naming
 * `evaluation.<field>`), then defaults filled.
 */
export function checkEvaluationSettings(
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

/** The data a PruningNet was trained on, as carried by EvaluationJob.data. */
export interface ResolvedDataSplit {
  dataset: string;
  seed: number;
  validationImages: number;
}

export function resolveDataSplit(d: evaluation.DataSplit | undefined): ResolvedDataSplit {
  return {
    dataset: d?.dataset ?? '',
    seed: d?.seed ?? 0,
    validationImages: d?.validationImages ?? 0,
  };
}

export interface JobIdParts {
  pruningnetId: string;
  pruningnetVersion: number;
  network: Network;
  encoding: Encoding;
  settings: ResolvedEvaluationSettings;
  data: ResolvedDataSplit;
}

/**
 * Deterministic id of an evaluation: the same PruningNet version, network, encoding,
 * settings and data always give the same id (memo key and Nats-Msg-Id).
 */
export function evaluationJobId(p: JobIdParts): string {
  const canonical = JSON.stringify([
    'metaprune-eval/1',
    p.pruningnetId,
    p.pruningnetVersion,
    resolveSpec(p.network.spec),
    [...p.encoding],
    [
      p.settings.recalibrationBatches,
      p.settings.batchSize,
      p.settings.validationImages,
      p.settings.seed,
    ],
    [p.data.dataset, p.data.seed, p.data.validationImages],
  ]);
  return `e${createHash('sha256').update(canonical).digest('hex').slice(0, 40)}`;
}

// ---------------------------------------------------------------------------------------
// Codecs and look-ups

export function encodeJob(job: evaluation.EvaluationJob): Uint8Array {
  return evaluation.EvaluationJob.encode(job).finish();
}

export function decodeJob(data: Uint8Array): evaluation.EvaluationJob {
  return evaluation.EvaluationJob.decode(data);
}

export function encodeResult(result: evaluation.EvaluationResult): Uint8Array {
  return evaluation.EvaluationResult.encode(result).finish();
}

export function decodeResult(data: Uint8Array): evaluation.EvaluationResult {
  return evaluation.EvaluationResult.decode(data);
}

/** The stored result of a job, if any evaluator (or the controller) published one. */
export async function lookupResult(
  jsm: JetStreamManager,
  jobId: string,
): Promise<evaluation.EvaluationResult | undefined> {
  const m = await jsm.streams.getMessage(RESULTS_STREAM, { last_by_subj: resultSubject(jobId) });
  return m ? decodeResult(m.data) : undefined;
}

/** The job message still waiting in the work queue (not acked yet), if any. */
export async function lookupPendingJob(
  jsm: JetStreamManager,
  jobId: string,
): Promise<{ seq: number; job: evaluation.EvaluationJob } | undefined> {
  const m = await jsm.streams.getMessage(JOBS_STREAM, { last_by_subj: jobSubject(jobId) });
  return m ? { seq: m.seq, job: decodeJob(m.data) } : undefined;
}

/** A FAILED result for a job (used by evaluators and by the controller's dead-letter path). */
export function failedResult(
  job: evaluation.EvaluationJob,
  reason: evaluation.FailureReason,
  error: string,
  extra: Partial<evaluation.EvaluationResult> = {},
): evaluation.EvaluationResult {
  return evaluation.EvaluationResult.fromPartial({
    jobId: job.jobId,
    searchId: job.searchId,
    encoding: job.encoding,
    pruningnetId: job.pruningnetId,
    pruningnetVersion: job.pruningnetVersion,
    status: evaluation.EvaluationStatus.FAILED,
    failureReason: reason,
    error,
    finishTime: new Date(),
    ...extra,
  });
}
