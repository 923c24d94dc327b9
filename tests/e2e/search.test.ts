/**
 * End-to-end: a real nats-server, the weight generator, the controller and two evaluator
 * processes on loopback (`startStack`, the same launcher as `metaprune up`), a tiny
 * PruningNet trained through the weight generator, searches through gRPC.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Stack, startStack, type TrainedPruningNet, trainOnStack } from '@metaprune/cli';
import { costModel } from '@metaprune/core';
import { common, controller, evaluation } from '@metaprune/proto';
import { connectNats, watchHealth } from '@metaprune/runtime';
import { NATS_NAMES, networkFromProto } from '@metaprune/wire';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  followSearchOn,
  resultCounts as resultCountsIn,
  resultOf as resultOfIn,
  startSearchOn,
} from './helpers/search.js';

const NETWORK = common.NetworkSpec.fromPartial({
  family: common.NetworkFamily.MOBILENET_V2,
  preset: common.NetworkPreset.SMALL,
  widthMultiplier: 0.25,
  inputSize: 32,
  inputChannels: 1,
  numClasses: 10,
});
const net = networkFromProto(NETWORK);
const full = costModel(net).cost(net.genes.map(() => 30)).macs;
/** Two thirds of the full network: most random candidates fit, some are rejected. */
const BUDGET = Math.round(full * 0.66);

type StartReq = Parameters<typeof controller.StartSearchRequest.fromPartial>[0];

describe('search through the real services', () => {
  let home: string;
  let stack: Stack;
  let pn: TrainedPruningNet;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'metaprune-e2e-'));
    stack = await startStack({
      evaluators: 2,
      home,
      logLevel: 'warn',
      env: {
        evaluator: { EVALUATOR_ACK_WAIT: '3s', EVALUATOR_PULL_EXPIRES: '1s' },
        controller: { CONTROLLER_STALL_CHECK: '1s' },
      },
    });
    pn = await trainOnStack(stack.weightGenerator.address, {
      network: NETWORK,
      dataset: 'fashion-mnist',
      epochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      momentum: 0.9,
      seed: 1,
      maxStepsPerEpoch: 3,
      validationImages: 500,
    });
    nc = await connectNats({ servers: stack.natsUrl, name: 'e2e' });
    jsm = await jetstreamManager(nc);
  }, 240_000);

  afterAll(async () => {
    await nc?.close();
    await stack?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  const request = (seed: number, over: StartReq = {}) =>
    controller.StartSearchRequest.fromPartial({
      pruningnetId: pn.pruningnetId,
      budgets: [{ name: 'two-thirds', maxMacs: BUDGET }],
      evolution: { populationSize: 6, generations: 3 },
      evaluation: { recalibrationBatches: 2, batchSize: 32, validationImages: 64, seed: 0 },
      seed,
      ...over,
    });

  const start = (req: controller.StartSearchRequest) =>
    startSearchOn(stack.controller.address, req);
  const follow = (id: string, onProgress?: (p: controller.SearchProgress) => void) =>
    followSearchOn(() => stack.controller.address, id, onProgress);

  const resultCounts = () => resultCountsIn(jsm);
  const resultOf = (jobId: string) => resultOfIn(jsm, jobId);

  function expectExactlyOnce(before: Map<string, number>, after: Map<string, number>, n: number) {
    const fresh = [...after].filter(([id]) => !before.has(id));
    expect(fresh).toHaveLength(n);
    for (const [, count] of after) expect(count).toBe(1);
  }

  it('a search completes through gRPC with best, Pareto front and scores in [0, 1]', async () => {
    const before = await resultCounts();
    const id = await start(request(1));
    const seen: controller.SearchProgress[] = [];
    const s = await follow(id, (p) => seen.push(p));
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    expect(p.generation).toBe(3);
    expect(p.failed).toBe(0);
    expect(p.evaluated).toBeGreaterThanOrEqual(12);
    const best = p.best[0]!.best!;
    expect(best.macs).toBeLessThanOrEqual(BUDGET);
    expect(best.top1).toBeGreaterThanOrEqual(0);
    expect(best.top1).toBeLessThanOrEqual(1);
    expect(best.encoding!.genes).toHaveLength(net.genes.length);
    expect(s.paretoFront.length).toBeGreaterThan(0);
    expect(seen.some((x) => x.generationSize > 0)).toBe(true);
    expectExactlyOnce(before, await resultCounts(), p.evaluated);
    const r = await resultOf(best.evaluationId);
    expect(r?.status).toBe(evaluation.EvaluationStatus.SUCCEEDED);
    expect(r?.top1).toBe(best.top1);
    expect(r?.images).toBe(64);
  });

  it('SIGKILL of an evaluator mid-search: the search completes, every candidate evaluated once', async () => {
    const before = await resultCounts();
    // slower evaluations so the kill lands inside one
    const id = await start(
      request(2, {
        evaluation: { recalibrationBatches: 8, batchSize: 32, validationImages: 128, seed: 0 },
      }),
    );
    const victim = stack.evaluators[0]!;
    let killed = false;
    const sub = nc.subscribe(`${NATS_NAMES.eventsSubjectPrefix}.evaluation.>`, {
      callback: (_err, msg) => {
        if (killed) return;
        const ev = evaluation.EvaluationEvent.decode(msg.data);
        if (
          ev.searchId === id &&
          ev.evaluatorId === 'evaluator-1' &&
          ev.phase === evaluation.EvaluationPhase.RECALIBRATION
        ) {
          killed = true;
          void victim.kill('SIGKILL');
        }
      },
    });
    let s: controller.Search;
    try {
      s = await follow(id);
    } finally {
      sub.unsubscribe();
    }
    expect(killed).toBe(true);
    expect(victim.running).toBe(false);
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    expect(p.failed).toBe(0);
    const after = await resultCounts();
    expectExactlyOnce(before, after, p.evaluated);
    // the job it was evaluating was redelivered to the other evaluator
    const fresh = [...after.keys()].filter((k) => !before.has(k));
    const results = await Promise.all(fresh.map(resultOf));
    expect(results.some((r) => (r?.deliveryAttempt ?? 0) >= 2)).toBe(true);
    await stack.addEvaluator(); // back to two for the next tests
  });

  it('SIGTERM of an evaluator mid-job: NOT_SERVING first, the job finishes, clean exit', async () => {
    const before = await resultCounts();
    const id = await start(
      request(5, {
        evaluation: { recalibrationBatches: 8, batchSize: 32, validationImages: 128, seed: 0 },
      }),
    );
    const statuses: string[] = [];
    let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
    let victimId = '';
    const sub = nc.subscribe(`${NATS_NAMES.eventsSubjectPrefix}.evaluation.>`, {
      callback: (_err, msg) => {
        if (stopping) return;
        const ev = evaluation.EvaluationEvent.decode(msg.data);
        if (ev.searchId !== id || ev.phase !== evaluation.EvaluationPhase.RECALIBRATION) return;
        const victim = stack.evaluators.find(
          (e) => e.running && `evaluator-${e.index + 1}` === ev.evaluatorId,
        );
        if (!victim) return;
        victimId = ev.evaluatorId;
        watchHealth(victim.address, (st) => statuses.push(st));
        stopping = (async () => {
          await new Promise((r) => setTimeout(r, 100));
          void victim.kill('SIGTERM');
          return victim.exited;
        })();
      },
    });
    let s: controller.Search;
    try {
      s = await follow(id);
    } finally {
      sub.unsubscribe();
    }
    expect(stopping).toBeDefined();
    const exit = await stopping!;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(statuses).toContain('NOT_SERVING');
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    const after = await resultCounts();
    expectExactlyOnce(before, after, p.evaluated);
    // it finished the job it had (drain timeout 20 s): one of its results is in the stream
    const fresh = [...after.keys()].filter((k) => !before.has(k));
    const results = await Promise.all(fresh.map(resultOf));
    expect(results.some((r) => r?.evaluatorId === victimId)).toBe(true);
    await stack.addEvaluator();
  });

  it('SIGKILL of the controller and a restart: resumes and ends like an uninterrupted run', async () => {
    const before = await resultCounts();
    const id = await start(request(3));
    let restarted: Promise<unknown> | undefined;
    const s = await follow(id, (p) => {
      if (!restarted && p.generation >= 1 && p.generationDone >= 2) {
        restarted = stack.restartController();
      }
    });
    expect(restarted).toBeDefined();
    await restarted;
    const p = s.progress!;
    expect(p.state).toBe(controller.SearchState.SUCCEEDED);
    expect(p.generation).toBe(3);
    expectExactlyOnce(before, await resultCounts(), p.evaluated);

    // The uninterrupted run with the same seed proposes exactly the same candidates: all
    // of them are answered by the memo, and it ends with the same bests.
    const ref = await follow(await start(request(3, { displayName: 'uninterrupted' })));
    const rp = ref.progress!;
    expect(rp.state).toBe(controller.SearchState.SUCCEEDED);
    expect(rp.memoHits).toBe(p.evaluated);
    expect(rp.evaluated).toBe(p.evaluated);
    expect(rp.best.map((b) => b.best?.encoding?.genes)).toEqual(
      p.best.map((b) => b.best?.encoding?.genes),
    );
    expect(ref.paretoFront.map((c) => c.encoding?.genes)).toEqual(
      s.paretoFront.map((c) => c.encoding?.genes),
    );
  });

  it('`metaprune search --json` prints the documented document', async () => {
    const cli = resolve(import.meta.dirname, '../../libs/cli/dist/main.js');
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((ok) => {
      const child = spawn(
        process.execPath,
        [
          cli,
          'search',
          '--controller',
          stack.controller.address,
          '--pruningnet',
          pn.pruningnetId,
          '--budgets',
          `${(BUDGET / 1e6).toFixed(3)},${((full * 0.9) / 1e6).toFixed(3)}`,
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
          '--seed',
          '4',
          '--json',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.on('exit', (code) => ok({ code, stdout, stderr }));
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const doc = JSON.parse(out.stdout) as {
      search: string;
      best: { budget: { maxMacs: number }; encoding: number[]; macs: number; top1: number }[];
      pareto: { encoding: number[]; macs: number; top1: number }[];
      evaluated: number;
    };
    expect(doc.search).toMatch(/^s/);
    expect(doc.best).toHaveLength(2);
    for (const b of doc.best) {
      expect(b.macs).toBeLessThanOrEqual(b.budget.maxMacs);
      expect(b.encoding).toHaveLength(net.genes.length);
    }
    expect(doc.pareto.length).toBeGreaterThan(0);
    expect(doc.evaluated).toBeGreaterThan(0);
  });
});

describe('metaprune up', () => {
  it('prints the endpoints and "ready", writes the stack file, and shuts down on SIGTERM', async () => {
    const home = mkdtempSync(join(tmpdir(), 'metaprune-up-'));
    const cli = resolve(import.meta.dirname, '../../libs/cli/dist/main.js');
    const child = spawn(process.execPath, [cli, 'up', '--evaluators', '1', '--home', home], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, METAPRUNE_STACK_FILE: '' },
    });
    try {
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      await new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no "ready" line:\n${stdout}`)), 120_000);
        child.stdout.on('data', (d) => {
          stdout += d;
          if (/^ready$/m.test(stdout)) {
            clearTimeout(timer);
            ok();
          }
        });
        child.on('exit', (code) => fail(new Error(`up exited with ${code}:\n${stdout}`)));
      });
      expect(stdout).toMatch(/^controller\s+127\.0\.0\.1:\d+$/m);
      expect(stdout).toMatch(/^weight-generator\s+127\.0\.0\.1:\d+$/m);
      expect(stdout).toMatch(/^nats\s+nats:\/\/127\.0\.0\.1:\d+$/m);
      expect(existsSync(join(home, 'stack.json'))).toBe(true);
      // secure by default: generated credentials and token, owner-only files
      expect(statSync(join(home, 'stack.json')).mode & 0o777).toBe(0o600);
      expect(statSync(join(home, 'secrets.json')).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(join(home, 'stack.json'), 'utf8')).token).toMatch(/^\S{16,}$/);
      const exited = new Promise<[number | null, string | null]>((ok) =>
        child.on('exit', (code, signal) => ok([code, signal])),
      );
      child.kill('SIGTERM');
      expect(await exited, stderr).toEqual([0, null]);
      expect(existsSync(join(home, 'stack.json'))).toBe(false);
    } finally {
      child.kill('SIGKILL');
      rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);
});
