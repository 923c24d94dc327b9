/**
 * Stored records are not trusted for paths: training-job records planted in the KV bucket
 * with path-like ids or a paused checkpoint outside the checkpoint root are refused at
 * recovery and reported, and nothing they name is deleted (real nats-server, real service).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ServiceError, status } from '@grpc/grpc-js';
import { common, weightgen } from '@metaprune/proto';
import { createLogger, openKv } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, tempDir } from '@metaprune/testkit';
import { NATS_NAMES, unary, weightGeneratorClient } from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWeightGenerator, type WeightGeneratorHandle } from '../src/index.js';

const { TrainingState } = weightgen;

function record(jobId: string, pruningnetId: string, state: weightgen.TrainingState, extra = {}) {
  const job = weightgen.TrainingJob.fromPartial({
    jobId,
    pruningnetId,
    progress: { state },
    createTime: new Date(),
  });
  return JSON.stringify({
    format: 1,
    job: weightgen.TrainingJob.toJSON(job),
    resolved: { epochs: 1 },
    sequence: 1,
    ...extra,
  });
}

describe('weight generator recovery with tampered job records', () => {
  const tmp = tempDir('wg-tamper-');
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let wg: WeightGeneratorHandle | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await wg?.shutdown();
    await nc?.close();
    await nats?.stop();
    await tmp.remove();
  });

  it('refuses and reports them, runs none of them and deletes nothing outside the root', async () => {
    const root = join(tmp.path, 'data', 'checkpoints');
    // what the records point at (as the old recovery resolved them)
    const victims = {
      relative: join(tmp.path, 'data', 'victim-rel'), // jobs/../../victim-rel
      absolute: join(tmp.path, 'victim-abs'),
      pruningnet: join(tmp.path, 'data', 'victim-pn'),
    };
    for (const dir of Object.values(victims)) {
      mkdirSync(join(dir, 'work'), { recursive: true });
      writeFileSync(join(dir, 'work', 'keep.txt'), 'precious');
      writeFileSync(join(dir, 'keep.txt'), 'precious');
    }
    const kv = await openKv(jetstream(nc), NATS_NAMES.trainingBucket, { history: 1 });
    await kv.put('job-rel', record('../../victim-rel', 'pn-1', TrainingState.RUNNING));
    await kv.put(
      'job-abs',
      record('job-abs', 'pn-2', TrainingState.PAUSED, { pausedCheckpoint: victims.absolute }),
    );
    await kv.put('job-pn', record('job-pn', '../../victim-pn', TrainingState.QUEUED));
    await kv.put(
      'job-init',
      record('job-init', 'pn-4', TrainingState.QUEUED, {
        initFrom: { pruningnetId: '../../../victim-abs', version: 1, epochsTrained: 1 },
      }),
    );

    wg = await startWeightGenerator({
      port: 0,
      natsUrl: [nats.url],
      checkpointRoot: root,
      exportRoot: join(tmp.path, 'exports'),
      logger: createLogger({ service: 'weight-generator', level: 'error' }),
    });
    const rejected = wg.jobs.rejectedRecords();
    expect(rejected.map((r) => r.key).sort()).toEqual(['job-abs', 'job-init', 'job-pn', 'job-rel']);
    expect(rejected.find((r) => r.key === 'job-rel')!.reason).toMatch(/job id .* not a valid id/);
    expect(rejected.find((r) => r.key === 'job-abs')!.reason).toMatch(/paused checkpoint/);
    expect(rejected.find((r) => r.key === 'job-pn')!.reason).toMatch(/pruningnet id/);
    expect(rejected.find((r) => r.key === 'job-init')!.reason).toMatch(/initFrom/);
    expect(wg.jobs.list()).toEqual([]); // none loaded, none queued

    // an unwritable checkpoint root: StartTraining is refused before a job is accepted
    rmSync(wg.store.jobsDir, { recursive: true });
    writeFileSync(wg.store.jobsDir, 'not a directory');
    const client = weightGeneratorClient(wg.address);
    try {
      const err = await unary(client, client.startTraining, {
        config: weightgen.TrainingConfig.fromPartial({
          network: {
            family: common.NetworkFamily.MOBILENET_V2,
            preset: common.NetworkPreset.SMALL,
          },
          dataset: 'fashion-mnist',
          epochs: 1,
        }),
        displayName: '',
        resumePruningnetId: '',
      }).catch((e: ServiceError) => e);
      expect((err as ServiceError).code).toBe(status.FAILED_PRECONDITION);
      expect((err as ServiceError).details).toMatch(/checkpoint root .* is not writable/);
      expect(wg.jobs.list()).toEqual([]);
    } finally {
      client.close();
      rmSync(wg.store.jobsDir);
    }
    // a shutdown (which pauses and cleans up running jobs) still touches none of them
    await wg.shutdown();
    wg = undefined;
    for (const dir of Object.values(victims)) {
      expect(existsSync(join(dir, 'keep.txt'))).toBe(true);
      expect(existsSync(join(dir, 'work', 'keep.txt'))).toBe(true);
    }
    // the records stay for an operator to inspect
    for (const key of ['job-rel', 'job-abs', 'job-pn', 'job-init']) {
      expect((await kv.get(key))?.operation).toBe('PUT');
    }
  });
});
