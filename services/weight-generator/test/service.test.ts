/**
 * The weight generator end to end: a real nats-server (JetStream), the real gRPC server on
 * 127.0.0.1:0, training in a real child process running the engine on Fashion-MNIST
 * (a tiny MobileNetV2 and a few steps per epoch, so it stays quick on two cores).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ServiceError, status } from '@grpc/grpc-js';
import { buildNetwork, geneChannels, widthOf } from '@metaprune/core';
import { common, weightgen } from '@metaprune/proto';
import { checkHealth, createLogger, FIELD_METADATA_KEY } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, tempDir, waitFor } from '@metaprune/testkit';
import {
  fetchWeights,
  NATS_NAMES,
  trainingSubject,
  unary,
  type WeightGeneratorClient,
  watchTraining,
  weightGeneratorClient,
} from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeRecord,
  MANIFEST,
  startWeightGenerator,
  type WeightGeneratorHandle,
} from '../src/index.js';

const { TrainingState } = weightgen;
const SPEC = { family: 'mobilenetv2', preset: 'small', width: 0.1, inputChannels: 1 } as const;
const net = buildNetwork(SPEC);

function trainingConfig(over: Partial<weightgen.TrainingConfig> = {}): weightgen.TrainingConfig {
  return weightgen.TrainingConfig.fromPartial({
    network: {
      family: common.NetworkFamily.MOBILENET_V2,
      preset: common.NetworkPreset.SMALL,
      widthMultiplier: SPEC.width,
    },
    dataset: 'fashion-mnist',
    epochs: 2,
    batchSize: 32,
    learningRate: 0.05,
    momentum: 0.9,
    labelSmoothing: 0.1,
    seed: 7,
    maxStepsPerEpoch: 3,
    validationImages: 500,
    ...over,
  });
}

async function grpcError(p: Promise<unknown>): Promise<ServiceError> {
  const err = await p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  return err as ServiceError;
}

function fieldOf(err: ServiceError): string | undefined {
  return err.metadata?.get(FIELD_METADATA_KEY)[0]?.toString();
}

/** Every progress report of a job until it ends. */
async function watchAll(client: WeightGeneratorClient, jobId: string) {
  const seen: weightgen.TrainingProgress[] = [];
  for await (const m of watchTraining(client, jobId)) seen.push(m.progress!);
  return seen;
}

describe('weight generator service', () => {
  const tmp = tempDir('wg-service-');
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let wg: WeightGeneratorHandle;
  let client: WeightGeneratorClient;
  const events: weightgen.WatchTrainingResponse[] = [];
  const options = () => ({
    port: 0,
    natsUrl: [nats.url],
    checkpointRoot: join(tmp.path, 'checkpoints'),
    exportRoot: join(tmp.path, 'exports'),
    progressInterval: 100,
    shutdownGrace: 30_000,
    exportRecalBatches: 10,
    trainWorkers: 1,
    logger: createLogger({ service: 'weight-generator', level: 'warn' }),
  });
  // filled by the training test, used by the later ones
  let pruningnetId = '';

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    const sub = nc.subscribe(`${NATS_NAMES.eventsSubjectPrefix}.training.>`);
    void (async () => {
      for await (const m of sub) events.push(weightgen.WatchTrainingResponse.decode(m.data));
    })();
    wg = await startWeightGenerator(options());
    client = weightGeneratorClient(wg.address);
  });

  afterAll(async () => {
    client?.close();
    await wg?.shutdown();
    await nc?.close();
    await nats?.stop();
    await tmp.remove();
  });

  it('serves health and refuses bad StartTraining fields with INVALID_ARGUMENT naming them', async () => {
    expect(await checkHealth(wg.address)).toBe('SERVING');
    expect(
      await checkHealth(wg.address, { service: 'metaprune.weightgen.v1.WeightGeneratorService' }),
    ).toBe('SERVING');
    const cases: [Partial<weightgen.TrainingConfig> | undefined, string][] = [
      [undefined, 'config'],
      [{ network: undefined }, 'config.network'],
      [{ network: { ...trainingConfig().network!, family: 0 } }, 'config.network.family'],
      [
        { network: { ...trainingConfig().network!, widthMultiplier: 9 } },
        'config.network.width_multiplier',
      ],
      [{ dataset: 'mnist' }, 'config.dataset'],
      [{ dataset: 'dir:../../etc' }, 'config.dataset'],
      [{ epochs: 0 }, 'config.epochs'],
      [{ batchSize: 100_000 }, 'config.batch_size'],
      [{ learningRate: Number.NaN }, 'config.learning_rate'],
      [{ momentum: 1.5 }, 'config.momentum'],
      [{ labelSmoothing: -0.1 }, 'config.label_smoothing'],
      [{ validationImages: 40_000 }, 'config.validation_images'],
    ];
    for (const [over, field] of cases) {
      const req = weightgen.StartTrainingRequest.fromPartial({
        ...(over === undefined ? {} : { config: trainingConfig(over) }),
      });
      // fromPartial would replace a NaN/huge value: set it after
      if (over && 'learningRate' in over) req.config!.learningRate = over.learningRate!;
      const err = await grpcError(unary(client, client.startTraining, req));
      expect(err.code, field).toBe(status.INVALID_ARGUMENT);
      expect(fieldOf(err), field).toBe(field);
      expect(err.details).toContain(field);
    }
    const long = await grpcError(
      unary(client, client.startTraining, {
        config: trainingConfig(),
        displayName: 'x'.repeat(200),
        resumePruningnetId: '',
      }),
    );
    expect(fieldOf(long)).toBe('display_name');
    const notFound = await grpcError(unary(client, client.getTraining, { jobId: 'job-nope' }));
    expect(notFound.code).toBe(status.NOT_FOUND);
    const badId = await grpcError(unary(client, client.getTraining, { jobId: '../x' }));
    expect(fieldOf(badId)).toBe('job_id');
  });

  it('with an auth token, StartTraining (also resuming), CancelTraining and ExportNetwork need it', async () => {
    const secured = await startWeightGenerator({
      ...options(),
      checkpointRoot: join(tmp.path, 'secured'),
      authToken: 's3cret',
    });
    const c = weightGeneratorClient(secured.address);
    try {
      const req = {
        config: trainingConfig({ epochs: 0 }),
        displayName: '',
        resumePruningnetId: '',
      };
      const none = await grpcError(unary(c, c.startTraining, req));
      expect(none.code).toBe(status.UNAUTHENTICATED);
      const wrong = await grpcError(unary(c, c.startTraining, req, { token: 'nope' }));
      expect(wrong.code).toBe(status.PERMISSION_DENIED);
      const right = await grpcError(unary(c, c.startTraining, req, { token: 's3cret' }));
      expect(right.code).toBe(status.INVALID_ARGUMENT); // past authentication
      const cancel = await grpcError(unary(c, c.cancelTraining, { jobId: 'job-x' }));
      expect(cancel.code).toBe(status.UNAUTHENTICATED);
      // adding a version to someone's PruningNet, or replacing an export, is a write too
      const resume = await grpcError(
        unary(c, c.startTraining, { ...req, resumePruningnetId: 'pn-someone' }),
      );
      expect(resume.code).toBe(status.UNAUTHENTICATED);
      const exportReq = weightgen.ExportNetworkRequest.fromPartial({
        pruningnetId: 'pn-someone',
        encoding: { genes: [1] },
        outputDir: 'x',
      });
      expect((await grpcError(unary(c, c.exportNetwork, exportReq))).code).toBe(
        status.UNAUTHENTICATED,
      );
      const exportRight = await grpcError(
        unary(c, c.exportNetwork, exportReq, { token: 's3cret' }),
      );
      expect(exportRight.code).toBe(status.NOT_FOUND); // past authentication
      const list = await unary(
        c,
        c.listPruningNets,
        weightgen.ListPruningNetsRequest.fromPartial({}),
      );
      expect(list.pruningnets).toEqual([]); // reads stay open
    } finally {
      c.close();
      await secured.shutdown();
    }
  });

  it('trains a tiny PruningNet: progress streamed over gRPC and NATS, state in KV, one version per epoch', async () => {
    const started = await unary(client, client.startTraining, {
      config: trainingConfig(),
      displayName: 'tiny',
      resumePruningnetId: '',
    });
    pruningnetId = started.pruningnetId;
    expect(started.jobId).toMatch(/^job-/);
    const seen = await watchAll(client, started.jobId);
    const last = seen.at(-1)!;
    expect(last.state).toBe(TrainingState.SUCCEEDED);
    // sequences strictly increase; states go forward
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!.sequence).toBeGreaterThan(seen[i - 1]!.sequence);
    expect(seen.some((p) => p.state === TrainingState.RUNNING && p.step > 0 && p.loss > 0)).toBe(
      true,
    );
    expect(
      seen.filter((p) => p.checkpointVersion !== undefined).map((p) => p.checkpointVersion),
    ).toEqual([1, 2]);
    for (const p of seen) {
      expect(p.accuracy).toBeGreaterThanOrEqual(0);
      expect(p.accuracy).toBeLessThanOrEqual(1);
      expect(p.epochs).toBe(2);
    }
    // the same reports went out on NATS
    await waitFor(() =>
      events.some(
        (e) => e.jobId === started.jobId && e.progress?.state === TrainingState.SUCCEEDED,
      ),
    );
    expect(trainingSubject(started.jobId)).toBe(`metaprune.events.training.${started.jobId}`);
    // and the KV bucket holds the final job
    const kv = await new Kvm(jetstream(nc)).open(NATS_NAMES.trainingBucket);
    const entry = await kv.get(started.jobId);
    const { job } = decodeRecord(entry!.value);
    expect(job.progress!.state).toBe(TrainingState.SUCCEEDED);
    expect(job.latestVersion).toBe(2);
    expect(job.config!.batchSize).toBe(32);
    const got = await unary(client, client.getTraining, { jobId: started.jobId });
    expect(got.job!.latestVersion).toBe(2);
    expect(got.job!.endTime).toBeInstanceOf(Date);
  });

  it('lists the PruningNet versions newest first, with paging', async () => {
    const all = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({}),
    );
    const mine = all.pruningnets.filter((p) => p.pruningnetId === pruningnetId);
    expect(mine.map((p) => p.version)).toEqual([2, 1]);
    const v2 = mine[0]!;
    expect(v2.geneCount).toBe(net.genes.length);
    expect(v2.epochsTrained).toBe(2);
    expect(v2.dataset).toBe('fashion-mnist');
    expect(v2.displayName).toBe('tiny');
    expect(v2.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(v2.config!.seed).toBe(7);
    expect(v2.config!.validationImages).toBe(500);
    expect(v2.network!.inputChannels).toBe(1);
    const latest = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({ pruningnetId, latestOnly: true }),
    );
    expect(latest.pruningnets.map((p) => p.version)).toEqual([2]);
    const page1 = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({ pruningnetId, pageSize: 1 }),
    );
    expect(page1.pruningnets.map((p) => p.version)).toEqual([2]);
    const page2 = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({
        pruningnetId,
        pageSize: 1,
        pageToken: page1.nextPageToken,
      }),
    );
    expect(page2.pruningnets.map((p) => p.version)).toEqual([1]);
    expect(page2.nextPageToken).toBe('');
    const bad = await grpcError(
      unary(
        client,
        client.listPruningNets,
        weightgen.ListPruningNetsRequest.fromPartial({ pageToken: 'garbage' }),
      ),
    );
    expect(fieldOf(bad)).toBe('page_token');
  });

  it('lists training jobs newest first, with paging (what the console reads)', async () => {
    const all = await unary(
      client,
      client.listTrainingJobs,
      weightgen.ListTrainingJobsRequest.fromPartial({}),
    );
    const mine = all.jobs.find((j) => j.pruningnetId === pruningnetId);
    expect(mine?.progress?.state).toBe(TrainingState.SUCCEEDED);
    expect(mine?.latestVersion).toBe(2);
    const times = all.jobs.map((j) => j.createTime!.getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const page1 = await unary(
      client,
      client.listTrainingJobs,
      weightgen.ListTrainingJobsRequest.fromPartial({ pageSize: 1 }),
    );
    expect(page1.jobs.map((j) => j.jobId)).toEqual([all.jobs[0]!.jobId]);
    expect(page1.nextPageToken === '').toBe(all.jobs.length === 1);
    const bad = await grpcError(
      unary(
        client,
        client.listTrainingJobs,
        weightgen.ListTrainingJobsRequest.fromPartial({ pageSize: 5000 }),
      ),
    );
    expect(fieldOf(bad)).toBe('page_size');
  });

  it('GenerateWeights streams the cropped tensors the encoding implies, in chunks', async () => {
    const enc = net.genes.map((_, i) => (i * 11 + 3) % 31);
    const { header, tensors } = await fetchWeights(client, {
      pruningnetId,
      encoding: { genes: enc },
      maxChunkBytes: 1024,
    });
    expect(header.version).toBe(2);
    expect(header.channels).toEqual(geneChannels(net, enc));
    expect(header.pruningnet!.config!.dataset).toBe('fashion-mnist');
    let expectedBytes = 0;
    for (const layer of net.layers) {
      const cin = widthOf(layer.in, enc);
      const cout = widthOf(layer.out, enc);
      const w = tensors.get(`${layer.name}.weight`);
      expect(w, layer.name).toBeDefined();
      const k = layer.kernel;
      const shape =
        layer.kind === 'fc'
          ? [cin, cout]
          : layer.kind === 'depthwise'
            ? [k, k, cin, 1]
            : [k, k, cin, cout];
      expect(w!.shape, layer.name).toEqual(shape);
      expect(w!.values.every(Number.isFinite)).toBe(true);
      expectedBytes += w!.values.length * 4;
      if (layer.kind === 'fc') {
        expect(tensors.get(`${layer.name}.bias`)!.shape).toEqual([cout]);
        expectedBytes += cout * 4;
      }
    }
    expect(header.totalBytes).toBe(expectedBytes);
    expect(tensors.size).toBe(header.tensorCount);
    // the same candidate again (cached PruningNet) gives the same weights
    const again = await fetchWeights(client, {
      pruningnetId,
      version: 2,
      encoding: { genes: enc },
    });
    const name = `${net.layers[3]!.name}.weight`;
    expect(again.tensors.get(name)!.values).toEqual(tensors.get(name)!.values);
    // version 1 is a different checkpoint
    const v1 = await fetchWeights(client, { pruningnetId, version: 1, encoding: { genes: enc } });
    expect(v1.header.version).toBe(1);
    expect(v1.tensors.get(name)!.values).not.toEqual(tensors.get(name)!.values);
  });

  it('GenerateWeights refuses a bad encoding with INVALID_ARGUMENT naming the gene', async () => {
    const enc = net.genes.map(() => 30);
    enc[4] = 31;
    const err = await grpcError(fetchWeights(client, { pruningnetId, encoding: { genes: enc } }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(fieldOf(err)).toBe('encoding.genes[4]');
    expect(err.details).toContain(`"${net.genes[4]!.name}"`);
    const short = await grpcError(
      fetchWeights(client, { pruningnetId, encoding: { genes: [1, 2, 3] } }),
    );
    expect(fieldOf(short)).toBe('encoding.genes');
    expect(short.details).toContain(`expected ${net.genes.length} genes`);
    const missing = await grpcError(
      fetchWeights(client, { pruningnetId: 'pn-unknown', encoding: { genes: enc } }),
    );
    expect(missing.code).toBe(status.NOT_FOUND);
    const noVersion = await grpcError(
      fetchWeights(client, {
        pruningnetId,
        version: 9,
        encoding: { genes: net.genes.map(() => 30) },
      }),
    );
    expect(noVersion.code).toBe(status.NOT_FOUND);
    const chunk = await grpcError(
      fetchWeights(client, {
        pruningnetId,
        maxChunkBytes: 10,
        encoding: { genes: net.genes.map(() => 30) },
      }),
    );
    expect(fieldOf(chunk)).toBe('max_chunk_bytes');
  });

  it('ExportNetwork writes a tfjs model inside the export root and refuses paths leaving it', async () => {
    const enc = net.genes.map((_, i) => (i % 2 === 0 ? 30 : 15));
    const res = await unary(
      client,
      client.exportNetwork,
      weightgen.ExportNetworkRequest.fromPartial({
        pruningnetId,
        encoding: { genes: enc },
        outputDir: 'team/a',
        name: 'tiny-pruned',
      }),
    );
    const root = join(tmp.path, 'exports');
    expect(res.path).toBe(join(root, 'team', 'a', 'tiny-pruned', 'model.json'));
    expect(res.version).toBe(2);
    expect(res.channels).toEqual(geneChannels(net, enc));
    expect(res.macs).toBeGreaterThan(0);
    expect(res.sizeBytes).toBeGreaterThan(0);
    const model = JSON.parse(readFileSync(res.path, 'utf8')) as {
      modelTopology: unknown;
      weightsManifest: { paths: string[] }[];
      userDefinedMetadata?: { encoding?: number[] };
    };
    expect(model.modelTopology).toBeDefined();
    for (const p of model.weightsManifest.flatMap((g) => g.paths)) {
      expect(existsSync(join(root, 'team', 'a', 'tiny-pruned', p))).toBe(true);
    }
    expect(model.userDefinedMetadata?.encoding).toEqual(enc);
    const exportError = (outputDir: string, name: string) =>
      grpcError(
        unary(
          client,
          client.exportNetwork,
          weightgen.ExportNetworkRequest.fromPartial({
            pruningnetId,
            encoding: { genes: enc },
            outputDir,
            name,
          }),
        ),
      );
    for (const [outputDir, name, field] of [
      ['../outside', '', 'output_dir'],
      ['/tmp', '', 'output_dir'],
      ['a/../../..', '', 'output_dir'],
      ['', '../x', 'name'],
      ['', 'a/b', 'name'],
    ] as const) {
      const err = await exportError(outputDir, name);
      expect(err.code, `${outputDir} ${name}`).toBe(status.INVALID_ARGUMENT);
      expect(fieldOf(err)).toBe(field);
    }
    expect(existsSync(join(tmp.path, 'outside'))).toBe(false);
    // an output directory that cannot be written: FAILED_PRECONDITION before exporting
    writeFileSync(join(root, 'blocked'), 'a file, not a directory');
    const blocked = await exportError('blocked/sub', '');
    expect(blocked.code).toBe(status.FAILED_PRECONDITION);
    expect(blocked.details).toMatch(/export directory .* is not writable/);
  });

  it('refuses a corrupted checkpoint version with DATA_LOSS and keeps serving the last good one', async () => {
    const dir = wg.store.versionDir(pruningnetId, 2);
    const manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as {
      files: { path: string; bytes: number }[];
    };
    const biggest = manifest.files.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    const path = join(dir, biggest.path);
    const bytes = await readFile(path);
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = (bytes[mid] as number) ^ 0xff; // flipped bits, same size
    await writeFile(path, bytes);
    const good = net.genes.map(() => 30);
    const err = await grpcError(
      fetchWeights(client, { pruningnetId, version: 2, encoding: { genes: good } }),
    );
    expect(err.code).toBe(status.DATA_LOSS);
    expect(err.details).toContain('corrupted');
    expect(err.details).toContain(biggest.path);
    const latest = await fetchWeights(client, { pruningnetId, encoding: { genes: good } });
    expect(latest.header.version).toBe(1);
    // a truncated file too
    await writeFile(path, bytes.subarray(0, 100));
    const trunc = await grpcError(
      fetchWeights(client, { pruningnetId, version: 2, encoding: { genes: good } }),
    );
    expect(trunc.code).toBe(status.DATA_LOSS);
    expect(trunc.details).toContain('truncated');
    const exported = await unary(
      client,
      client.exportNetwork,
      weightgen.ExportNetworkRequest.fromPartial({ pruningnetId, encoding: { genes: good } }),
    );
    expect(exported.version).toBe(1);
    expect(await checkHealth(wg.address)).toBe('SERVING');
  });

  it('continues training an existing PruningNet as new versions of the same id', async () => {
    // v2 is corrupted by now: the continuation starts from v1, the newest good version
    const started = await unary(client, client.startTraining, {
      config: trainingConfig({ epochs: 1 }),
      displayName: 'more',
      resumePruningnetId: pruningnetId,
    });
    expect(started.pruningnetId).toBe(pruningnetId);
    const seen = await watchAll(client, started.jobId);
    expect(seen.at(-1)!.state).toBe(TrainingState.SUCCEEDED);
    const list = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({ pruningnetId }),
    );
    expect(list.pruningnets.map((p) => p.version)).toEqual([3, 2, 1]);
    expect(list.pruningnets[0]!.epochsTrained).toBe(2); // 1 of v1 + 1 more
    expect(list.pruningnets[0]!.jobId).toBe(started.jobId);
    const other = await grpcError(
      unary(client, client.startTraining, {
        config: trainingConfig({
          network: { ...trainingConfig().network!, widthMultiplier: 0.2 },
        }),
        displayName: '',
        resumePruningnetId: pruningnetId,
      }),
    );
    expect(other.code).toBe(status.FAILED_PRECONDITION);
    const unknown = await grpcError(
      unary(client, client.startTraining, {
        config: trainingConfig(),
        displayName: '',
        resumePruningnetId: 'pn-unknown',
      }),
    );
    expect(unknown.code).toBe(status.NOT_FOUND);
  });

  it('cancels a running job; its last checkpoint stays usable', async () => {
    const started = await unary(client, client.startTraining, {
      config: trainingConfig({ epochs: 50, maxStepsPerEpoch: 2 }),
      displayName: '',
      resumePruningnetId: '',
    });
    await waitFor(
      async () =>
        (await unary(client, client.getTraining, { jobId: started.jobId })).job!.latestVersion >= 1,
      { timeoutMs: 90_000 },
    );
    const res = await unary(client, client.cancelTraining, { jobId: started.jobId });
    expect(res.job!.progress!.state).toBe(TrainingState.CANCELLED);
    expect(res.job!.endTime).toBeInstanceOf(Date);
    const again = await unary(client, client.cancelTraining, { jobId: started.jobId });
    expect(again.job!.progress!.state).toBe(TrainingState.CANCELLED);
    const w = await fetchWeights(client, {
      pruningnetId: started.pruningnetId,
      encoding: { genes: net.genes.map(() => 10) },
    });
    expect(w.header.version).toBe(res.job!.latestVersion);
  });

  it('shutdown pauses the running job at a checkpoint; a restarted service resumes and finishes it', async () => {
    const started = await unary(client, client.startTraining, {
      config: trainingConfig({ epochs: 3, maxStepsPerEpoch: 6 }),
      displayName: 'resumable',
      resumePruningnetId: '',
    });
    await waitFor(
      async () => {
        const p = (await unary(client, client.getTraining, { jobId: started.jobId })).job!
          .progress!;
        return p.state === TrainingState.RUNNING && (p.epoch > 1 || p.step >= 2);
      },
      { timeoutMs: 90_000, intervalMs: 50 },
    );
    client.close();
    await wg.shutdown();
    const kv = await new Kvm(jetstream(nc)).open(NATS_NAMES.trainingBucket);
    const paused = decodeRecord((await kv.get(started.jobId))!.value);
    expect(paused.job.progress!.state).toBe(TrainingState.PAUSED);
    const pausedAt = paused.job.progress!;
    expect(paused.record.pausedCheckpoint ?? paused.job.latestVersion).toBeTruthy();

    wg = await startWeightGenerator(options());
    client = weightGeneratorClient(wg.address);
    const seen = await watchAll(client, started.jobId);
    expect(seen.at(-1)!.state).toBe(TrainingState.SUCCEEDED);
    // it continued from where it paused instead of starting over: no report went back
    const at = (p: weightgen.TrainingProgress) => p.epoch * 1000 + p.step;
    const running = seen.filter((p) => p.state === TrainingState.RUNNING && p.step > 0);
    expect(running.length).toBeGreaterThan(0);
    for (const p of running) expect(at(p)).toBeGreaterThanOrEqual(at(pausedAt));
    const job = (await unary(client, client.getTraining, { jobId: started.jobId })).job!;
    expect(job.latestVersion).toBe(3);
    const versions = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({ pruningnetId: started.pruningnetId }),
    );
    expect(versions.pruningnets.map((p) => [p.version, p.epochsTrained])).toEqual([
      [3, 3],
      [2, 2],
      [1, 1],
    ]);
  });
});
