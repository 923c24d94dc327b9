/**
 * Latency budgets end to end: the stack of `metaprune up` (nats-server, weight generator,
 * latency profiler, controller and an evaluator as processes, `startStack`), a tiny
 * PruningNet, a latency table measured here by `metaprune profile` (which finds the stack's
 * profiler through the stack file) and searches under latency budgets through the
 * controller's gRPC API and `metaprune search`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import {
  type Stack,
  searchClient,
  startService,
  startStack,
  type TrainedPruningNet,
  trainOnStack,
} from '@metaprune/cli';
import { buildNetwork, costModel, LatencyPredictor, type LatencyTable } from '@metaprune/core';
import { common, controller } from '@metaprune/proto';
import { connectNats, FIELD_METADATA_KEY, openKv } from '@metaprune/runtime';
import { LatencyProfilerClient, NATS_NAMES, networkFromProto } from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followSearchOn, startSearchOn } from './helpers/search.js';

const run = promisify(execFile);
const CLI = resolve(import.meta.dirname, '..', '..', 'libs', 'cli', 'dist', 'main.js');

const NETWORK = common.NetworkSpec.fromPartial({
  family: common.NetworkFamily.MOBILENET_V2,
  preset: common.NetworkPreset.SMALL,
  widthMultiplier: 0.25,
  inputSize: 32,
  inputChannels: 1,
  numClasses: 10,
});
const NET_FLAGS = [
  '--network',
  'mobilenetv2',
  '--preset',
  'small',
  '--width',
  '0.25',
  '--input-size',
  '32',
  '--input-channels',
  '1',
  '--classes',
  '10',
];
const net = networkFromProto(NETWORK);
// The PruningNet is trained through the API with the proto default keep_last_stage_full
// false; `metaprune profile` measures core's default (true). MobileNetV2 has no stage the
// flag changes, and the controller takes the one table for the other.
const PROFILED = buildNetwork({ ...net.spec, lastStageFull: true });
const KEY = { network: PROFILED.spec, backend: 'wasm', batchSize: 1 };

type StartReq = Parameters<typeof controller.StartSearchRequest.fromPartial>[0];
type BudgetIn = Parameters<typeof common.Budget.fromPartial>[0];

describe('searches under latency budgets through the real services', () => {
  let home: string;
  let stack: Stack;
  let pn: TrainedPruningNet;
  let profiler: LatencyProfilerClient;
  let deviceId: string;
  let table: LatencyTable;
  let predictor: LatencyPredictor;
  /** A bound about 40% of the way up the predicted range: many candidates fit, many not. */
  let mid: number;

  /** The built CLI, with the test's home: it finds the stack through its stack file. */
  async function cli(args: string[]) {
    const env: NodeJS.ProcessEnv = { ...process.env, METAPRUNE_HOME: home };
    for (const k of [
      'METAPRUNE_STACK_FILE',
      'METAPRUNE_LATENCY_PROFILER',
      'METAPRUNE_CONTROLLER',
    ]) {
      delete env[k];
    }
    const res = await run(process.execPath, [CLI, ...args], {
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    return res.stdout;
  }

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'metaprune-e2e-latency-'));
    stack = await startStack({
      evaluators: 1,
      home,
      logLevel: 'warn',
      writeStackFile: true,
      env: {
        evaluator: { EVALUATOR_ACK_WAIT: '3s', EVALUATOR_PULL_EXPIRES: '1s' },
        controller: { CONTROLLER_STALL_CHECK: '1s' },
      },
    });
    expect(stack.latencyProfiler).toBeDefined();
    const [trained, profiled] = await Promise.all([
      trainOnStack(stack.weightGenerator.address, {
        network: NETWORK,
        dataset: 'fashion-mnist',
        epochs: 1,
        batchSize: 32,
        learningRate: 0.1,
        momentum: 0.9,
        seed: 1,
        maxStepsPerEpoch: 3,
        validationImages: 500,
      }),
      // a real (tiny, coarse-grid) measurement on this machine, uploaded to the profiler
      // that the stack file names
      cli([
        'profile',
        ...NET_FLAGS,
        '--device',
        'lab',
        '--backend',
        'wasm',
        '--grid',
        '3',
        '--repeats',
        '2',
        '--warmup',
        '1',
        '--fit',
        '3',
        '--warmup-ms',
        '100',
        '--json',
      ]),
    ]);
    pn = trained;
    const p = JSON.parse(profiled) as Record<string, unknown>;
    expect(p).toMatchObject({
      profiler: stack.latencyProfiler!.address,
      version: 1,
      registered: true,
    });
    deviceId = p['device_id'] as string;
    profiler = new LatencyProfilerClient(stack.latencyProfiler!.address);
    table = await profiler.getTable(deviceId, KEY);
    predictor = new LatencyPredictor(PROFILED, table);
    const lo = predictor.lowerBoundMs();
    mid = lo + 0.4 * (predictor.upperBoundMs() - lo);
  }, 240_000);

  afterAll(async () => {
    profiler?.close();
    await stack?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  const request = (budgets: BudgetIn[], over: StartReq = {}) =>
    controller.StartSearchRequest.fromPartial({
      pruningnetId: pn.pruningnetId,
      budgets,
      evolution: { populationSize: 6, generations: 3 },
      evaluation: { recalibrationBatches: 2, batchSize: 32, validationImages: 64, seed: 0 },
      seed: 1,
      ...over,
    });
  const lat = (over: BudgetIn = {}): BudgetIn => ({
    name: 'lat',
    maxLatencyMs: mid,
    latencyDeviceId: 'lab',
    ...over,
  });

  const startOn = startSearchOn;
  async function refused(address: string, req: controller.StartSearchRequest) {
    try {
      await startOn(address, req);
    } catch (err) {
      const e = err as grpc.ServiceError;
      return { code: e.code, field: e.metadata.get(FIELD_METADATA_KEY)[0], details: e.details };
    }
    throw new Error('expected StartSearch to fail');
  }
  const follow = (id: string, onProgress?: (p: controller.SearchProgress) => void) =>
    followSearchOn(() => stack.controller.address, id, onProgress);
  /** The search's record in the controller's KV bucket (gzip-compressed JSON). */
  async function storedRecord(id: string) {
    const nc = await connectNats({ servers: stack.natsUrl, name: 'e2e-latency' });
    try {
      const kv = await openKv(jetstream(nc), NATS_NAMES.searchesBucket);
      const e = await kv.get(id);
      return JSON.parse(gunzipSync(e!.value).toString('utf8')) as {
        ctx: { latency?: Record<string, unknown> };
        state: {
          generation: number;
          tested: Record<string, { cost: { latencyMs?: number } }>;
        };
        generationOf: Record<string, number>;
      };
    } finally {
      await nc.close();
    }
  }
  const predicted = async (genes: readonly number[], version = 0) =>
    (await profiler.predict(deviceId, KEY, genes, { version })).predictedMs;

  it('a controller without a latency profiler refuses latency budgets with INVALID_ARGUMENT', async () => {
    const bare = await startService({
      name: 'controller',
      env: {
        CONTROLLER_PORT: '0',
        CONTROLLER_NATS_URL: stack.natsUrl,
        CONTROLLER_WEIGHT_GENERATOR: stack.weightGenerator.address,
        CONTROLLER_LOG_LEVEL: 'warn',
      },
    });
    try {
      const r = await refused(bare.address, request([{ name: 'm', maxMacs: 1e9 }, lat()]));
      expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.field).toBe('budgets[1].maxLatencyMs');
      expect(r.details).toMatch(/latency profiler/);
    } finally {
      await bare.kill('SIGTERM');
    }
  });

  it('refuses infeasible, mixed and unknown-device latency budgets', async () => {
    const addr = stack.controller.address;
    // A device whose table puts every layer at >= 0.01 ms (the tiny measured table above
    // can have a negative constant, so nothing positive lies below its bound).
    const reg = await profiler.registerDevice('slowbox');
    await profiler.uploadTable(reg.device!.deviceId, reg.token, {
      ...table,
      constantMs: 0.2,
      rows: table.rows.map((r) => ({ ...r, medianMs: 0.01 + r.cin * r.cout * 1e-6 })),
    });
    const slow = new LatencyPredictor(PROFILED, await profiler.getTable(reg.device!.deviceId, KEY));
    expect(slow.lowerBoundMs()).toBeGreaterThan(0.2);
    const low = await refused(
      addr,
      request([
        { name: 'm', maxMacs: 1e9 },
        lat({ maxLatencyMs: slow.lowerBoundMs() * 0.9, latencyDeviceId: 'slowbox' }),
      ]),
    );
    expect(low.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(low.field).toBe('budgets[1].maxLatencyMs');
    expect(low.details).toContain(
      `lie in [${slow.lowerBoundMs().toFixed(4)}, ${slow.upperBoundMs().toFixed(4)}] ms`,
    );
    const mixed = await refused(addr, request([lat(), lat({ latencyDeviceId: 'other' })]));
    expect(mixed.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(mixed.field).toBe('budgets[1].latencyDeviceId');
    const unknown = await refused(addr, request([lat({ latencyDeviceId: 'nope' })]));
    expect(unknown.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unknown.field).toBe('budgets[0].latencyDeviceId');
    expect(unknown.details).toMatch(/no device "nope"/);
    const noTable = await refused(addr, request([lat({ latencyBatchSize: 4 })]));
    expect(noTable.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(noTable.details).toMatch(/device "lab" has no latency table .*batch size 4/);
  });

  it('a search under latency budgets: every best within its bound, predicted as PredictLatency does', async () => {
    const full = costModel(net).cost(net.genes.map(() => 30)).macs;
    const both = { name: 'both', maxMacs: Math.round(full * 0.5), maxLatencyMs: mid * 1.2 };
    const id = await startOn(
      stack.controller.address,
      request([lat(), { ...both, latencyDeviceId: 'lab' }]),
    );
    const s = await follow(id);
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    expect(p.failed).toBe(0);
    expect(p.rejected).toBeGreaterThan(0); // over-budget candidates were generated and dropped
    expect(p.best).toHaveLength(2);
    for (const b of p.best) {
      const c = b.best!;
      expect(c.predictedLatencyMs).toBeLessThanOrEqual(b.budget!.maxLatencyMs!);
      expect(c.predictedLatencyMs).toBe(await predicted(c.encoding!.genes));
    }
    expect(p.best[1]!.best!.macs).toBeLessThanOrEqual(both.maxMacs);
    expect(s.paretoFront.length).toBeGreaterThan(0);
    for (const c of s.paretoFront.slice(0, 5)) {
      expect(c.predictedLatencyMs).toBe(await predicted(c.encoding!.genes));
    }
  });

  it('a controller killed mid-search resumes with the table version the search started with', async () => {
    const id = await startOn(
      stack.controller.address,
      request([lat()], { evolution: { populationSize: 6, generations: 4 }, seed: 2 }),
    );
    // one generation done, then a newer table (every prediction higher) and a SIGKILL
    await new Promise<void>((ok, fail) => {
      const client = searchClient(stack.controller.address);
      const stream = client.watchSearch({ searchId: id });
      stream.on('data', (m: controller.WatchSearchResponse) => {
        if ((m.progress?.generation ?? 0) >= 1) {
          stream.cancel();
          client.close();
          ok();
        }
      });
      stream.on('error', (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) fail(err);
      });
    });
    const saved = JSON.parse(readFileSync(join(home, 'latency', 'devices.json'), 'utf8')) as Record<
      string,
      { deviceId: string; token: string }
    >;
    const creds = saved[`${stack.latencyProfiler!.address}|lab`]!;
    expect(creds.deviceId).toBe(deviceId);
    const shift = 0.1 * (predictor.upperBoundMs() - predictor.lowerBoundMs());
    const up = await profiler.uploadTable(deviceId, creds.token, {
      ...table,
      constantMs: table.constantMs + shift,
    });
    expect(up.version).toBe(2);
    const restartedAt = await storedRecord(id);
    await stack.restartController();
    const s = await follow(id);
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    expect(p.generation).toBe(4);
    const best = p.best[0]!.best!;
    expect(best.predictedLatencyMs).toBeLessThanOrEqual(mid);
    expect(best.predictedLatencyMs).toBe(await predicted(best.encoding!.genes, 1));
    expect(best.predictedLatencyMs).not.toBe(await predicted(best.encoding!.genes, 2));
    for (const c of s.paretoFront.slice(-5)) {
      expect(c.predictedLatencyMs).toBe(await predicted(c.encoding!.genes, 1));
    }
    // the stored state: every candidate the restarted controller proposed was predicted with
    // version 1 (the locally compiled copy of it, equal to PredictLatency as checked above)
    const rec = await storedRecord(id);
    expect(rec.ctx.latency).toMatchObject({ device: 'lab', deviceId, version: 1 });
    const after = Object.entries(rec.state.tested).filter(
      ([k]) => (rec.generationOf[k] ?? -1) >= restartedAt.state.generation,
    );
    expect(after.length).toBeGreaterThan(3);
    for (const [k, t] of after) {
      expect(t.cost.latencyMs).toBe(predictor.predict(k.split(',').map(Number)));
      expect(t.cost.latencyMs).toBeLessThanOrEqual(mid);
    }
  });

  it('metaprune search --max-latency-ms --device combines with --max-mflops and reports latency', async () => {
    // the latest table (version 2) now: predictions are `shift` higher than version 1's
    const latest = new LatencyPredictor(PROFILED, await profiler.getTable(deviceId, KEY));
    const bound = latest.lowerBoundMs() + 0.4 * (latest.upperBoundMs() - latest.lowerBoundMs());
    const mflops = (0.6 * costModel(net).cost(net.genes.map(() => 30)).macs) / 1e6;
    const out = JSON.parse(
      await cli([
        'search',
        '--pruningnet',
        pn.pruningnetId,
        '--max-mflops',
        String(mflops),
        '--max-latency-ms',
        String(bound),
        '--device',
        'lab',
        '--generations',
        '2',
        '--population',
        '4',
        '--recal-batches',
        '2',
        '--batch-size',
        '32',
        '--val-images',
        '64',
        '--json',
      ]),
    ) as {
      state: string;
      best: {
        budget: Record<string, unknown>;
        encoding: number[];
        macs: number;
        predictedLatencyMs: number;
      }[];
    };
    expect(out.state).toBe('SUCCEEDED');
    expect(out.best).toHaveLength(1);
    const b = out.best[0]!;
    expect(b.budget).toMatchObject({ maxLatencyMs: bound, device: 'lab' });
    expect(b.macs).toBeLessThanOrEqual(mflops * 1e6);
    expect(b.predictedLatencyMs).toBeLessThanOrEqual(bound);
    expect(b.predictedLatencyMs).toBe(await predicted(b.encoding, 2));

    // a bound below every candidate: exit 2, one line naming the flag
    const err = await cli([
      'search',
      '--pruningnet',
      pn.pruningnetId,
      '--max-latency-ms',
      '0.1',
      '--device',
      'slowbox',
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err!.stderr).toMatch(/^metaprune: --max-latency-ms: .*cannot be met by any candidate/);
    expect(err!.stderr.trim().split('\n')).toHaveLength(1);
  });
});
