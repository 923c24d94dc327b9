import { buildNetwork, type Encoding } from '@metaprune/core';
import { evaluation, weightgen } from '@metaprune/proto';
import { connectNats, openKv, publishWithMsgId } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer } from '@metaprune/testkit';
import {
  encodeJob,
  ensureEvaluationStreams,
  evaluationJobId,
  JOBS_STREAM,
  jobSubject,
  lookupResult,
  NATS_NAMES,
  RESULTS_STREAM,
  resolveDataSplit,
  resolveEvaluationSettings,
  specToProto,
} from '@metaprune/wire';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type CandidateEvaluator,
  type EvaluationInput,
  EvaluatorWorker,
  type EvaluatorWorkerOptions,
  type GeneratedWeights,
  type JobEvent,
  PermanentEvaluationError,
  type WeightSource,
} from '../src/index.js';

// The queue semantics under test do not depend on what a score is; a scripted evaluator
// (deterministic score, optional delay / failures) stands in for the engine here. The
// end-to-end tests in tests/e2e run the real engine and weight generator.
const NET = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.1, inputSize: 8 });
const SETTINGS = resolveEvaluationSettings({
  recalibrationBatches: 1,
  batchSize: 8,
  validationImages: 16,
  seed: 0,
});
const DATA = resolveDataSplit(undefined);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scoreOf = (e: Encoding) => e.reduce((a, b) => a + b, 0) / (30 * e.length);

class ScriptedEvaluator implements CandidateEvaluator {
  calls: string[] = [];
  delayMs = 0;
  /** jobId → errors to throw on the next calls. */
  failures = new Map<string, Error[]>();
  async evaluate(input: EvaluationInput) {
    this.calls.push(input.job.jobId);
    const queued = this.failures.get(input.job.jobId);
    const err = queued?.shift();
    if (err) throw err;
    const until = Date.now() + this.delayMs;
    while (Date.now() < until) {
      input.signal.throwIfAborted();
      await sleep(20);
    }
    return {
      top1: scoreOf(input.encoding),
      loss: 1,
      images: input.settings.validationImages,
      recalibrationMs: 1,
      validationMs: 1,
    };
  }
}

const weights: WeightSource = {
  async generate(req): Promise<GeneratedWeights> {
    return {
      header: weightgen.WeightsHeader.fromPartial({
        pruningnetId: req.pruningnetId,
        version: req.version,
      }),
      tensors: new Map(),
      bytes: 0,
    };
  },
  close() {},
};

function jobFor(genes: number[], over: Partial<evaluation.EvaluationJob> = {}) {
  const jobId = evaluationJobId({
    pruningnetId: 'pn',
    pruningnetVersion: 1,
    network: NET,
    encoding: genes,
    settings: SETTINGS,
    data: DATA,
  });
  return evaluation.EvaluationJob.fromPartial({
    jobId,
    searchId: 's1',
    pruningnetId: 'pn',
    pruningnetVersion: 1,
    network: specToProto(NET.spec),
    encoding: { genes },
    settings: SETTINGS,
    attempt: 1,
    ...over,
  });
}

let nextGene = 0;
/** A fresh encoding (distinct job id) per call. */
function freshGenes(): number[] {
  nextGene++;
  return NET.genes.map((_, i) => (nextGene * 7 + i) % 31);
}

describe('EvaluatorWorker against a real nats-server', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const workers: EvaluatorWorker[] = [];
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ servers: server.url, name: 'test' });
    jsm = await jetstreamManager(nc);
    await ensureEvaluationStreams(jsm);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop(500)));
    await Promise.all(conns.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  async function worker(
    evaluator: CandidateEvaluator,
    over: Partial<EvaluatorWorkerOptions> = {},
    events?: JobEvent[],
  ) {
    const c = await connectNats({ servers: server.url, name: 'worker' });
    conns.push(c);
    const w = new EvaluatorWorker({
      nc: c,
      evaluator,
      weights,
      ackWaitMs: 1500,
      maxAttempts: 3,
      retryDelayMs: 50,
      pullExpiresMs: 1000,
      ...(events ? { onJob: (e) => events.push(e) } : {}),
      ...over,
    });
    await w.prepare();
    w.start();
    workers.push(w);
    return w;
  }

  const publish = (job: evaluation.EvaluationJob, msgId = job.jobId) =>
    publishWithMsgId(jetstream(nc), jobSubject(job.jobId), encodeJob(job), msgId);

  async function resultOf(jobId: string, timeoutMs = 15_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await lookupResult(jsm, jobId);
      if (r) return r;
      if (Date.now() > until) throw new Error(`no result for ${jobId}`);
      await sleep(50);
    }
  }

  async function resultCount(jobId: string) {
    const info = await jsm.streams.info(RESULTS_STREAM, {
      subjects_filter: `${NATS_NAMES.resultsSubjectPrefix}.${jobId}`,
    });
    return info.state.subjects?.[`${NATS_NAMES.resultsSubjectPrefix}.${jobId}`] ?? 0;
  }

  it('evaluates a job, publishes its result once and acks it', async () => {
    const ev = new ScriptedEvaluator();
    await worker(ev);
    const genes = freshGenes();
    const job = jobFor(genes);
    const first = await publish(job);
    const dup = await publish(job);
    expect(dup.duplicate).toBe(true);
    const r = await resultOf(job.jobId);
    expect(r.status).toBe(evaluation.EvaluationStatus.SUCCEEDED);
    expect(r.top1).toBeCloseTo(scoreOf(genes), 6);
    expect(r.encoding?.genes).toEqual(genes);
    expect(r.macs).toBeGreaterThan(0);
    expect(r.deliveryAttempt).toBe(1);
    expect(r.timings?.totalMs).toBeGreaterThan(0);
    await expect.poll(async () => (await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(0);
    expect(ev.calls).toEqual([job.jobId]);
    expect(await resultCount(job.jobId)).toBe(1);
    expect(first.duplicate).toBe(false);
  });

  it('acks without evaluating when a result is already stored', async () => {
    const ev = new ScriptedEvaluator();
    const job = jobFor(freshGenes());
    await publishWithMsgId(
      jetstream(nc),
      `${NATS_NAMES.resultsSubjectPrefix}.${job.jobId}`,
      evaluation.EvaluationResult.encode(
        evaluation.EvaluationResult.fromPartial({
          jobId: job.jobId,
          pruningnetId: job.pruningnetId,
          pruningnetVersion: job.pruningnetVersion,
          encoding: job.encoding,
          status: evaluation.EvaluationStatus.SUCCEEDED,
          top1: 0.5,
        }),
      ).finish(),
      job.jobId,
    );
    const events: JobEvent[] = [];
    await worker(ev, {}, events);
    await publish(job);
    await expect.poll(() => events.map((e) => e.outcome)).toEqual(['already-done']);
    expect(ev.calls).toEqual([]);
    expect(await resultCount(job.jobId)).toBe(1);
  });

  it('retries transient failures, records permanent ones and gives up after maxAttempts', async () => {
    const ev = new ScriptedEvaluator();
    const flaky = jobFor(freshGenes());
    const bad = jobFor(freshGenes());
    const hopeless = jobFor(freshGenes());
    ev.failures.set(flaky.jobId, [new Error('blip')]);
    ev.failures.set(bad.jobId, [
      new PermanentEvaluationError(evaluation.FailureReason.NUMERICAL_ERROR, 'NaN loss'),
    ]);
    ev.failures.set(hopeless.jobId, [new Error('a'), new Error('b'), new Error('c')]);
    await worker(ev);
    await Promise.all([publish(flaky), publish(bad), publish(hopeless)]);
    const [rf, rb, rh] = await Promise.all([
      resultOf(flaky.jobId),
      resultOf(bad.jobId),
      resultOf(hopeless.jobId),
    ]);
    expect(rf.status).toBe(evaluation.EvaluationStatus.SUCCEEDED);
    expect(rf.deliveryAttempt).toBe(2);
    expect(rb.status).toBe(evaluation.EvaluationStatus.FAILED);
    expect(rb.failureReason).toBe(evaluation.FailureReason.NUMERICAL_ERROR);
    expect(rb.error).toBe('NaN loss');
    expect(rh.status).toBe(evaluation.EvaluationStatus.FAILED);
    expect(rh.failureReason).toBe(evaluation.FailureReason.INTERNAL);
    expect(rh.deliveryAttempt).toBe(3);
    expect(ev.calls.filter((id) => id === hopeless.jobId)).toHaveLength(3);
    expect(ev.calls.filter((id) => id === bad.jobId)).toHaveLength(1);
  });

  it('an invalid job is recorded as INVALID_JOB without retries', async () => {
    const ev = new ScriptedEvaluator();
    await worker(ev);
    // a well-formed id (the digest of this content) over an encoding of the wrong length
    const job = jobFor([1, 2, 3]);
    await publish(job);
    const r = await resultOf(job.jobId);
    expect(r.status).toBe(evaluation.EvaluationStatus.FAILED);
    expect(r.failureReason).toBe(evaluation.FailureReason.INVALID_JOB);
    expect(r.error).toMatch(/job\.encoding: expected 24 genes/);
    expect(ev.calls).toEqual([]);
  });

  it('counts attempts in KV: a job that crashed evaluators maxAttempts times is recorded FAILED', async () => {
    const ev = new ScriptedEvaluator();
    const job = jobFor(freshGenes());
    // three earlier deliveries crashed their evaluators (and a broker restart lost its count)
    const kv = await openKv(jetstream(nc), NATS_NAMES.attemptsBucket, { ttlMs: 24 * 3600_000 });
    await kv.put(job.jobId, '3');
    await worker(ev);
    await publish(job);
    const r = await resultOf(job.jobId);
    expect(r.status).toBe(evaluation.EvaluationStatus.FAILED);
    expect(r.failureReason).toBe(evaluation.FailureReason.MAX_DELIVERIES_EXCEEDED);
    expect(r.deliveryAttempt).toBe(4);
    expect(ev.calls).toEqual([]);
  });

  it('heartbeats keep a slow job from being redelivered to another evaluator', async () => {
    const a = new ScriptedEvaluator();
    const b = new ScriptedEvaluator();
    a.delayMs = b.delayMs = 4000; // > 2x the ack wait of 1.5 s
    await worker(a);
    await worker(b);
    const job = jobFor(freshGenes());
    await publish(job);
    const r = await resultOf(job.jobId);
    expect(r.status).toBe(evaluation.EvaluationStatus.SUCCEEDED);
    expect(r.deliveryAttempt).toBe(1);
    expect([...a.calls, ...b.calls]).toEqual([job.jobId]);
  });

  it('an evaluator that dies mid-job (no ack, no heartbeat) loses it to another after ack wait', async () => {
    const job = jobFor(freshGenes());
    await publish(job);
    // a "crashed" evaluator: takes the job and never acks or heartbeats
    const c = await connectNats({ servers: server.url, name: 'doomed' });
    const consumer = await jetstream(c).consumers.get(JOBS_STREAM, NATS_NAMES.evaluatorsConsumer);
    const taken = await consumer.next({ expires: 3000 });
    expect(taken?.subject).toBe(jobSubject(job.jobId));
    await c.close();
    const ev = new ScriptedEvaluator();
    const t0 = Date.now();
    await worker(ev);
    const r = await resultOf(job.jobId);
    expect(r.status).toBe(evaluation.EvaluationStatus.SUCCEEDED);
    expect(r.deliveryAttempt).toBe(2);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('stop() hands the current job back so another evaluator takes it at once', async () => {
    const slow = new ScriptedEvaluator();
    slow.delayMs = 30_000;
    const events: JobEvent[] = [];
    const w1 = await worker(slow, {}, events);
    const job = jobFor(freshGenes());
    await publish(job);
    await expect.poll(() => slow.calls.length, { timeout: 10_000 }).toBe(1);
    const t0 = Date.now();
    await w1.stop(200);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(events.map((e) => e.outcome)).toEqual(['handed-back']);
    const fast = new ScriptedEvaluator();
    await worker(fast);
    const r = await resultOf(job.jobId, 10_000);
    expect(r.status).toBe(evaluation.EvaluationStatus.SUCCEEDED);
    // the handed-back attempt was not counted against the job
    expect(r.deliveryAttempt).toBe(2); // broker delivery count 2, KV count 1
    expect(fast.calls).toEqual([job.jobId]);
  });

  it('N workers share the queue: every job evaluated once, work spread over both', async () => {
    const a = new ScriptedEvaluator();
    const b = new ScriptedEvaluator();
    a.delayMs = b.delayMs = 100;
    await worker(a);
    await worker(b);
    const jobs = Array.from({ length: 12 }, () => jobFor(freshGenes()));
    await Promise.all(jobs.map((j) => publish(j)));
    const results = await Promise.all(jobs.map((j) => resultOf(j.jobId)));
    expect(results.every((r) => r.status === evaluation.EvaluationStatus.SUCCEEDED)).toBe(true);
    const all = [...a.calls, ...b.calls];
    expect(all.sort()).toEqual(jobs.map((j) => j.jobId).sort());
    expect(a.calls.length).toBeGreaterThan(2);
    expect(b.calls.length).toBeGreaterThan(2);
    for (const j of jobs) expect(await resultCount(j.jobId)).toBe(1);
  });
});
