/**
 * Training jobs: a FIFO queue run one job at a time by a Trainer (a child process in
 * production), their state in the JetStream KV bucket NATS_NAMES.trainingBucket (one key
 * per job, a JSON JobRecord), and one progress event per report on
 * `${NATS_NAMES.eventsSubjectPrefix}.training.<job>` (a protobuf WatchTrainingResponse).
 *
 * Restart safety: at start every non-terminal job in the bucket is queued again, in
 * creation order. A job interrupted by a shutdown (PAUSED) continues from the mid-epoch
 * checkpoint it saved; one interrupted by a crash (still RUNNING in the bucket) continues
 * from the newest good checkpoint version it published; with neither it starts over.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { sameSpec } from '@metaprune/core';
import { weightgen } from '@metaprune/proto';
import {
  activeTraceContext,
  createMetrics,
  FailedPreconditionError,
  type Logger,
  type MetapruneMetrics,
  NotFoundError,
  nullLogger,
  SPAN_NAMES,
  type Span,
  startSpan,
  TELEMETRY_ATTRS,
  type TraceContext,
  UnavailableError,
} from '@metaprune/runtime';
import { isTerminal, trainingSubject } from '@metaprune/wire';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { CheckpointCorruptError } from './errors.js';
import { ID_PATTERN } from './paths.js';
import type { CheckpointMeta, CheckpointStore } from './store.js';
import type {
  ResolvedTrainingConfig,
  StopReason,
  Trainer,
  TrainerCheckpoint,
  TrainerProgress,
} from './types.js';
import { trainingConfigToProto } from './validate.js';

const TrainingState = weightgen.TrainingState;
type TrainingJob = weightgen.TrainingJob;
type TrainingProgress = weightgen.TrainingProgress;

export const RECORD_FORMAT = 1;

/** What the KV bucket holds per job. */
export interface JobRecord {
  format: typeof RECORD_FORMAT;
  /** The job as the API shows it (weightgen.TrainingJob.toJSON). */
  job: unknown;
  /** The validated configuration with defaults (what the trainer gets). */
  resolved: ResolvedTrainingConfig;
  /** Number of the last progress report. */
  sequence: number;
  /** A mid-epoch checkpoint saved by a pause, newer than every published version. */
  pausedCheckpoint?: string;
  /** Continue from this version's weights (resume_pruningnet_id); fixed at start. */
  initFrom?: { pruningnetId: string; version: number; epochsTrained: number };
}

interface LiveJob {
  job: TrainingJob;
  record: JobRecord;
  /** Serialises KV writes of this job. */
  writes: Promise<unknown>;
  /** Trace context of the StartTraining call: epoch spans join its trace. */
  traceContext?: TraceContext;
}

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Parses a KV value into the job it describes. */
export function decodeRecord(value: Uint8Array): { job: TrainingJob; record: JobRecord } {
  const record = JSON.parse(new TextDecoder().decode(value)) as JobRecord;
  if (record.format !== RECORD_FORMAT)
    throw new Error(`unknown job record format ${record.format}`);
  return { job: weightgen.TrainingJob.fromJSON(record.job), record };
}

/**
 * Why a stored record cannot be trusted, or undefined when it can. The bucket is writable
 * by whoever holds NATS credentials, so ids that name directories are checked here, and a
 * paused checkpoint must be the one this job's id implies (paths are never taken from a
 * record: they are derived from the checkpoint root and the checked id).
 */
export function recordProblem(
  key: string,
  job: TrainingJob,
  record: JobRecord,
): string | undefined {
  if (!ID_PATTERN.test(job.jobId))
    return `job id ${JSON.stringify(job.jobId.slice(0, 80))} is not a valid id`;
  if (job.jobId !== key)
    return `job id ${JSON.stringify(job.jobId.slice(0, 80))} differs from its key`;
  if (!ID_PATTERN.test(job.pruningnetId)) {
    return `pruningnet id ${JSON.stringify(job.pruningnetId.slice(0, 80))} is not a valid id`;
  }
  const paused = record.pausedCheckpoint;
  if (paused !== undefined) {
    const tail = `/jobs/${job.jobId}/paused`;
    if (typeof paused !== 'string' || !paused.replaceAll('\\', '/').endsWith(tail)) {
      return `paused checkpoint ${JSON.stringify(String(paused).slice(0, 120))} is not this job's (…${tail})`;
    }
  }
  const init = record.initFrom;
  if (init !== undefined) {
    if (
      init === null ||
      typeof init.pruningnetId !== 'string' ||
      !ID_PATTERN.test(init.pruningnetId) ||
      !Number.isSafeInteger(init.version) ||
      init.version < 0
    ) {
      return 'initFrom does not name a valid PruningNet version';
    }
  }
  if (record.resolved === null || typeof record.resolved !== 'object') {
    return 'the resolved training configuration is missing';
  }
  return undefined;
}

/** A record recover() refused to load (reported, never deleted: an operator looks at it). */
export interface RejectedRecord {
  key: string;
  reason: string;
}

export interface JobManagerOptions {
  nc: NatsConnection;
  kv: KV;
  store: CheckpointStore;
  trainer: Trainer;
  backend: string;
  /** Least time between two progress reports (state changes and epoch ends always report). */
  progressIntervalMs: number;
  /** Versions kept per PruningNet after a publish (0 = all). */
  keepVersions?: number;
  logger?: Logger;
}

export interface StartJobInput {
  resolved: ResolvedTrainingConfig;
  displayName: string;
  /** Continue training this PruningNet (validated by the caller to exist). */
  continuePruningnet?: {
    pruningnetId: string;
    version: number;
    epochsTrained: number;
    config: ResolvedTrainingConfig;
  };
}

export class JobManager {
  private readonly jobs = new Map<string, LiveJob>();
  private readonly rejected: RejectedRecord[] = [];
  private readonly queue: string[] = [];
  private current: { jobId: string; controller: AbortController; done: Promise<void> } | undefined;
  private accepting = true;
  private pumping = false;
  private readonly logger: Logger;
  private readonly encoder = new TextEncoder();
  private readonly metrics: MetapruneMetrics = createMetrics();

  constructor(private readonly opts: JobManagerOptions) {
    this.logger = opts.logger ?? nullLogger;
  }

  /** Loads every job from the bucket and queues the unfinished ones again. */
  async recover(): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.opts.kv.keys()) keys.push(k);
    const unfinished: LiveJob[] = [];
    for (const key of keys) {
      const entry = await this.opts.kv.get(key);
      if (entry?.operation !== 'PUT') continue;
      let live: LiveJob;
      try {
        const { job, record } = decodeRecord(entry.value);
        live = { job, record, writes: Promise.resolve() };
      } catch (err) {
        this.rejected.push({ key, reason: `unreadable: ${(err as Error).message}` });
        this.logger.warn('ignoring an unreadable job record', { key, err });
        continue;
      }
      const problem = recordProblem(key, live.job, live.record);
      if (problem) {
        // neither run nor cleaned up: nothing it names is touched, the record stays for review
        this.rejected.push({ key, reason: problem });
        this.logger.error('refusing a tampered or invalid job record', { key, reason: problem });
        continue;
      }
      this.jobs.set(live.job.jobId, live);
      if (!isTerminal(live.job.progress?.state ?? TrainingState.UNSPECIFIED)) unfinished.push(live);
    }
    unfinished.sort(
      (a, b) => (a.job.createTime?.getTime() ?? 0) - (b.job.createTime?.getTime() ?? 0),
    );
    for (const live of unfinished) {
      this.logger.info('resuming an unfinished training job', {
        job: live.job.jobId,
        state: weightgen.trainingStateToJSON(live.job.progress!.state),
      });
      this.queue.push(live.job.jobId);
    }
    this.pump();
  }

  /** Accepts a job: QUEUED in the bucket, then run when its turn comes. */
  async start(input: StartJobInput): Promise<TrainingJob> {
    if (!this.accepting) throw new UnavailableError('the weight generator is shutting down');
    const jobId = newId('job');
    let pruningnetId: string;
    let initFrom: JobRecord['initFrom'];
    if (input.continuePruningnet) {
      const c = input.continuePruningnet;
      if (!sameSpec(c.config.network, input.resolved.network)) {
        throw new FailedPreconditionError(
          `PruningNet ${c.pruningnetId} was trained for another network; config.network must match it`,
        );
      }
      const busy = [...this.jobs.values()].find(
        (j) => j.job.pruningnetId === c.pruningnetId && !isTerminal(j.job.progress!.state),
      );
      if (busy) {
        throw new FailedPreconditionError(
          `PruningNet ${c.pruningnetId} is being trained by job ${busy.job.jobId}; wait for it or cancel it`,
        );
      }
      pruningnetId = c.pruningnetId;
      initFrom = {
        pruningnetId: c.pruningnetId,
        version: c.version,
        epochsTrained: c.epochsTrained,
      };
    } else {
      pruningnetId = newId('pn');
    }
    const job: TrainingJob = weightgen.TrainingJob.fromPartial({
      jobId,
      pruningnetId,
      config: trainingConfigToProto(input.resolved),
      displayName: input.displayName,
      progress: weightgen.TrainingProgress.fromPartial({
        state: TrainingState.QUEUED,
        epochs: input.resolved.epochs,
        time: new Date(),
      }),
      latestVersion: 0,
      createTime: new Date(),
    });
    const live: LiveJob = {
      job,
      record: {
        format: RECORD_FORMAT,
        job: null,
        resolved: input.resolved,
        sequence: 0,
        ...(initFrom ? { initFrom } : {}),
      },
      writes: Promise.resolve(),
      traceContext: activeTraceContext(),
    };
    this.jobs.set(jobId, live);
    await this.report(live, {});
    this.queue.push(jobId);
    this.logger.info('training job queued', { job: jobId, pruningnet: pruningnetId });
    this.pump();
    return job;
  }

  /** The job (this process's view, else the bucket's). NOT_FOUND when unknown. */
  async get(jobId: string): Promise<TrainingJob> {
    const live = this.jobs.get(jobId);
    if (live) return live.job;
    const entry = await this.opts.kv.get(jobId);
    if (entry?.operation !== 'PUT') throw new NotFoundError(`training job ${jobId} does not exist`);
    return decodeRecord(entry.value).job;
  }

  /** Cancels a job; a running one stops at its next step (its last checkpoint stays usable). */
  async cancel(jobId: string): Promise<TrainingJob> {
    const live = this.jobs.get(jobId);
    if (!live) {
      await this.get(jobId); // NOT_FOUND, or a job of another instance
      throw new FailedPreconditionError(
        `training job ${jobId} is not run by this weight generator`,
      );
    }
    const state = live.job.progress!.state;
    if (isTerminal(state)) return live.job;
    const cur = this.current;
    if (cur?.jobId === jobId) {
      cur.controller.abort('cancel' satisfies StopReason);
      await cur.done;
      return live.job;
    }
    const i = this.queue.indexOf(jobId);
    if (i >= 0) this.queue.splice(i, 1);
    live.job.endTime = new Date();
    await this.report(live, { state: TrainingState.CANCELLED }, true);
    await this.cleanup(live);
    return live.job;
  }

  /** Records recover() refused (for diagnostics and tests). */
  rejectedRecords(): readonly RejectedRecord[] {
    return this.rejected;
  }

  /** Jobs known to this process (for tests and diagnostics). */
  list(): TrainingJob[] {
    return [...this.jobs.values()].map((j) => j.job);
  }

  /**
   * Stops taking jobs; the running job checkpoints and becomes PAUSED (resumed by the next
   * start of the service). Resolves when it has stopped.
   */
  async pause(): Promise<void> {
    this.accepting = false;
    this.queue.length = 0;
    const cur = this.current;
    if (!cur) return;
    cur.controller.abort('pause' satisfies StopReason);
    await cur.done;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.current && this.accepting && this.queue.length > 0) {
        const jobId = this.queue.shift()!;
        const live = this.jobs.get(jobId);
        if (!live || isTerminal(live.job.progress!.state)) continue;
        const controller = new AbortController();
        const done = this.run(live, controller.signal).finally(() => {
          this.current = undefined;
          this.pump();
        });
        this.current = { jobId, controller, done };
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Where a (re)started job continues from. */
  private async resumePoint(
    live: LiveJob,
  ): Promise<{ resumeFrom?: string; initFrom?: string; note: string }> {
    const { store } = this.opts;
    const id = live.job.pruningnetId;
    if (live.record.pausedCheckpoint) {
      const paused = store.jobPausedDir(live.job.jobId);
      try {
        await store.verify(paused, `${live.job.jobId} paused checkpoint`);
        return { resumeFrom: paused, note: 'paused checkpoint' };
      } catch (err) {
        if (!(err instanceof CheckpointCorruptError)) throw err;
        this.logger.warn('paused checkpoint refused; falling back to the last version', {
          job: live.job.jobId,
          reason: err.message,
        });
      }
    }
    // the newest good version this job published
    const versions = (await store.versions(id)).reverse();
    for (const v of versions) {
      const dir = store.versionDir(id, v);
      try {
        const m = await store.verify(dir, `${id} v${v}`);
        if (m.meta.jobId === live.job.jobId) return { resumeFrom: dir, note: `version ${v}` };
        break; // older versions belong to an earlier job
      } catch (err) {
        if (!(err instanceof CheckpointCorruptError)) throw err;
      }
    }
    if (live.record.initFrom) {
      const r = await store.resolve(
        live.record.initFrom.pruningnetId,
        live.record.initFrom.version,
      );
      return { initFrom: r.dir, note: `weights of ${r.pruningnetId} v${r.version}` };
    }
    return { note: 'scratch' };
  }

  private async run(live: LiveJob, signal: AbortSignal): Promise<void> {
    const { store, trainer } = this.opts;
    const jobId = live.job.jobId;
    const log = this.logger.child({ job: jobId, pruningnet: live.job.pruningnetId });
    let lastReport = 0;
    // one span per training epoch (pruningnet.train_epoch), from its first progress report
    // to its checkpoint, in the trace of the StartTraining call
    const attrs = { [TELEMETRY_ATTRS.jobId]: jobId };
    let epochSpan: Span | undefined;
    let epochNo = 0;
    const endEpoch = (): void => {
      epochSpan?.end();
      epochSpan = undefined;
    };
    const onEpochProgress = (p: TrainerProgress): void => {
      if (p.epoch !== epochNo || !epochSpan) {
        endEpoch();
        epochNo = p.epoch;
        epochSpan = startSpan(
          SPAN_NAMES.trainEpoch,
          {
            ...attrs,
            [TELEMETRY_ATTRS.epoch]: p.epoch,
            'metaprune.pruningnet.id': live.job.pruningnetId,
          },
          live.traceContext,
        );
      }
      if (Number.isFinite(p.loss)) {
        this.metrics.trainingLoss.record(p.loss, { ...attrs, phase: 'train' });
        epochSpan.setAttribute('metaprune.train.loss', p.loss);
      }
      if (Number.isFinite(p.accuracy)) {
        this.metrics.trainingAccuracy.record(p.accuracy, { ...attrs, phase: 'train' });
      }
      if (p.validationAccuracy !== undefined && Number.isFinite(p.validationAccuracy)) {
        this.metrics.trainingAccuracy.record(p.validationAccuracy, { ...attrs, phase: 'val' });
        epochSpan.setAttribute('metaprune.train.validation_accuracy', p.validationAccuracy);
      }
    };
    try {
      const point = await this.resumePoint(live);
      if (signal.aborted) {
        await this.stopped(live, signal, log);
        return;
      }
      log.info('training job starting', { from: point.note });
      await this.report(live, { state: TrainingState.RUNNING }, true);
      lastReport = Date.now();
      const outcome = await trainer.train(
        {
          jobId,
          pruningnetId: live.job.pruningnetId,
          config: live.record.resolved,
          workDir: store.jobWorkDir(jobId),
          ...(point.resumeFrom ? { resumeFrom: point.resumeFrom } : {}),
          ...(point.initFrom ? { initFrom: point.initFrom } : {}),
          backend: this.opts.backend,
        },
        {
          signal,
          onProgress: (p: TrainerProgress) => {
            onEpochProgress(p);
            const now = Date.now();
            const force = p.validationAccuracy !== undefined;
            if (!force && now - lastReport < this.opts.progressIntervalMs) return;
            lastReport = now;
            void this.report(live, progressPatch(p));
          },
          onCheckpoint: async (c: TrainerCheckpoint) => {
            await this.saveCheckpoint(live, c);
            if (c.epochComplete) endEpoch();
            lastReport = Date.now();
          },
        },
      );
      if (outcome.status === 'completed') {
        live.job.endTime = new Date();
        const p = live.job.progress!;
        await this.report(
          live,
          {
            state: TrainingState.SUCCEEDED,
            epoch: p.epochs,
            step: p.stepsPerEpoch,
            etaSeconds: 0,
          },
          true,
        );
        log.info('training job succeeded', { latestVersion: live.job.latestVersion });
        await this.cleanup(live);
      } else {
        await this.stopped(live, signal, log);
      }
    } catch (err) {
      if (signal.aborted) {
        log.warn('training stopped with an error after a stop request', { err });
        await this.stopped(live, signal, log);
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      log.error('training job failed', { err });
      live.job.error = message;
      live.job.endTime = new Date();
      await this.report(live, { state: TrainingState.FAILED }, true).catch(() => {});
      await this.cleanup(live);
    } finally {
      endEpoch();
    }
  }

  private async stopped(live: LiveJob, signal: AbortSignal, log: Logger): Promise<void> {
    if (signal.reason === 'pause') {
      await this.report(live, { state: TrainingState.PAUSED, etaSeconds: 0 }, true);
      log.info('training job paused; it resumes when the service starts again');
    } else {
      live.job.endTime = new Date();
      await this.report(live, { state: TrainingState.CANCELLED, etaSeconds: 0 }, true);
      log.info('training job cancelled', { latestVersion: live.job.latestVersion });
      await this.cleanup(live);
    }
  }

  private meta(live: LiveJob, c: TrainerCheckpoint): CheckpointMeta {
    return {
      pruningnetId: live.job.pruningnetId,
      jobId: live.job.jobId,
      displayName: live.job.displayName,
      // a continued PruningNet counts the epochs of the version it started from
      epochsTrained: c.epochsTrained + (live.record.initFrom?.epochsTrained ?? 0),
      ...(c.validationAccuracy !== undefined ? { validationAccuracy: c.validationAccuracy } : {}),
      config: live.record.resolved,
      createTime: new Date().toISOString(),
    };
  }

  private async saveCheckpoint(live: LiveJob, c: TrainerCheckpoint): Promise<void> {
    const { store } = this.opts;
    if (!c.epochComplete) {
      const dir = store.jobPausedDir(live.job.jobId);
      await store.saveReplacing(dir, c.dir, this.meta(live, c), true);
      live.record.pausedCheckpoint = dir;
      await this.persist(live);
      return;
    }
    const v = await store.publish(c.dir, this.meta(live, c), true);
    live.job.latestVersion = v.version;
    if (this.opts.keepVersions) {
      await store
        .prune(v.pruningnetId, this.opts.keepVersions)
        .catch((err: unknown) =>
          this.logger.warn('deleting old versions failed', { pruningnet: v.pruningnetId, err }),
        );
    }
    if (live.record.pausedCheckpoint) {
      await rm(store.jobPausedDir(live.job.jobId), { recursive: true, force: true });
      delete live.record.pausedCheckpoint;
    }
    await this.report(
      live,
      {
        checkpointVersion: v.version,
        ...(c.validationAccuracy !== undefined ? { validationAccuracy: c.validationAccuracy } : {}),
      },
      true,
    );
  }

  /** Removes a finished job's scratch space. */
  private async cleanup(live: LiveJob): Promise<void> {
    await rm(this.opts.store.jobWorkDir(live.job.jobId), { recursive: true, force: true }).catch(
      () => {},
    );
    if (live.record.pausedCheckpoint) {
      await rm(this.opts.store.jobPausedDir(live.job.jobId), {
        recursive: true,
        force: true,
      }).catch(() => {});
      delete live.record.pausedCheckpoint;
      await this.persist(live).catch(() => {});
    }
  }

  /**
   * Applies a progress patch, stores the job and publishes the report. `validationAccuracy`
   * and `checkpointVersion` appear only in the report that carries them.
   */
  private report(live: LiveJob, patch: Partial<TrainingProgress>, wait = false): Promise<void> {
    const prev = live.job.progress ?? weightgen.TrainingProgress.fromPartial({});
    live.record.sequence++;
    const { validationAccuracy: _v, checkpointVersion: _c, ...carried } = prev;
    const progress: TrainingProgress = {
      ...carried,
      ...patch,
      sequence: live.record.sequence,
      time: new Date(),
    };
    live.job.progress = progress;
    const event = weightgen.WatchTrainingResponse.encode({
      jobId: live.job.jobId,
      progress,
    }).finish();
    const p = this.persist(live).then(() => {
      try {
        this.opts.nc.publish(trainingSubject(live.job.jobId), event);
      } catch (err) {
        this.logger.warn('could not publish a training event', { job: live.job.jobId, err });
      }
    });
    if (wait) return p;
    p.catch((err: unknown) =>
      this.logger.warn('could not store training progress', { job: live.job.jobId, err }),
    );
    return Promise.resolve();
  }

  /** Writes the job's record to the bucket (writes of one job are serialised). */
  private persist(live: LiveJob): Promise<void> {
    const record: JobRecord = { ...live.record, job: weightgen.TrainingJob.toJSON(live.job) };
    const bytes = this.encoder.encode(JSON.stringify(record));
    const next = live.writes.then(
      () => this.opts.kv.put(live.job.jobId, bytes),
      () => this.opts.kv.put(live.job.jobId, bytes),
    );
    live.writes = next.catch(() => {});
    return next.then(() => {});
  }
}

function progressPatch(p: TrainerProgress): Partial<TrainingProgress> {
  return {
    epoch: p.epoch,
    epochs: p.epochs,
    step: p.step,
    stepsPerEpoch: p.stepsPerEpoch,
    loss: finiteOr(p.loss, 0),
    accuracy: finiteOr(p.accuracy, 0),
    learningRate: finiteOr(p.learningRate, 0),
    imagesPerSecond: Math.max(0, finiteOr(p.imagesPerSecond, 0)),
    etaSeconds: Math.max(0, finiteOr(p.etaSeconds, 0)),
    ...(p.validationAccuracy !== undefined ? { validationAccuracy: p.validationAccuracy } : {}),
  };
}

function finiteOr(x: number, fallback: number): number {
  return Number.isFinite(x) ? x : fallback;
}
