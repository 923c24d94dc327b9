/**
 * Training jobs from the weight generator's API: ListTrainingJobs every poll, plus one
 * WatchTraining stream per unfinished job, so every progress report arrives (the
 * validation accuracy of an epoch is in one report only).
 */
import type * as grpc from '@grpc/grpc-js';
import { weightgen } from '@metaprune/proto';
import type { Logger } from '@metaprune/runtime';
import { isTerminal, unary, type WeightGeneratorClient } from '@metaprune/wire';
import { READ_DEADLINE_MS } from '../clients.js';
import type { ConsoleStore, LiveTraining } from '../store.js';

const MAX_JOBS = 200;

export class TrainingPoller {
  constructor(
    private readonly client: WeightGeneratorClient,
    private readonly store: ConsoleStore,
    private readonly logger: Logger,
  ) {}

  /** Lists the jobs; doubles as the weight generator's health row. */
  async poll(): Promise<void> {
    const { store } = this;
    let res: weightgen.ListTrainingJobsResponse;
    try {
      res = await unary(
        this.client,
        this.client.listTrainingJobs,
        weightgen.ListTrainingJobsRequest.fromPartial({ pageSize: MAX_JOBS }),
        { timeoutMs: READ_DEADLINE_MS },
      );
      store.setStatus('weight-generator', true);
    } catch (err) {
      store.setStatus('weight-generator', false, (err as grpc.ServiceError).details ?? String(err));
      return;
    }
    const seen = new Set<string>();
    for (const job of res.jobs) {
      seen.add(job.jobId);
      let live = store.training.get(job.jobId);
      if (!live) {
        live = { job, watchAfter: 0 };
        store.training.set(job.jobId, live);
      } else if (!live.watch || isTerminal(job.progress?.state ?? 0)) {
        this.update(live, job);
      }
      if (!isTerminal(live.job.progress?.state ?? 0)) this.ensureWatch(live);
    }
    for (const [id, live] of store.training) {
      if (!seen.has(id)) {
        live.watch?.cancel();
        store.training.delete(id);
      }
    }
  }

  private update(live: LiveTraining, job: weightgen.TrainingJob): void {
    live.job = job;
    const val = job.progress?.validationAccuracy;
    if (val !== undefined) live.val = val;
  }

  private ensureWatch(live: LiveTraining): void {
    const { store } = this;
    if (live.watch || store.closed || Date.now() < live.watchAfter) return;
    const call = this.client.watchTraining(
      weightgen.WatchTrainingRequest.fromPartial({ jobId: live.job.jobId }),
    );
    live.watch = call;
    call.on('data', (msg: weightgen.WatchTrainingResponse) => {
      const p = msg.progress;
      if (!p) return;
      this.update(live, { ...live.job, progress: p });
      store.flush(false);
    });
    const done = (err?: unknown) => {
      if (err) this.logger.debug('training watch ended', { job: live.job.jobId, err });
      if (live.watch === call) live.watch = undefined;
      live.watchAfter = Date.now() + 2000;
    };
    call.on('error', done);
    call.on('end', () => done());
  }
}
