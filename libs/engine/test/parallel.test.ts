/**
 * Worker-thread execution: data-parallel training is deterministic and resumes exactly;
 * one worker reproduces in-process training bit for bit; the evaluator pool returns what
 * in-process evaluation returns.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullEncoding, uniformEncoding } from '@metaprune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { collectImages } from '../src/evaluate/data.js';
import { evaluateCandidate } from '../src/evaluate/evaluate.js';
import { EvaluationWorkers } from '../src/evaluate/pool.js';
import { createPruningNet, sampleEncoding } from '../src/pruningnet/pruningnet.js';
import { ParallelStepper } from '../src/train/parallel.js';
import { type TrainProgress, trainPruningNet } from '../src/train/trainer.js';
import { bytes, tinyNet, toyData } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'metaprune-par-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const losses = (into: number[]) => (p: TrainProgress) => {
  if (p.phase === 'step') into.push(p.stepLoss);
};

describe('ParallelStepper', () => {
  it('2 workers: deterministic, and a resumed run continues exactly', async () => {
    const net = tinyNet();
    const { train } = toyData(192, 32, 8); // 160 sub-train: 5 steps per epoch
    const common = { data: train, epochs: 2, lr: 0.05, seed: 3 };
    const runs: number[][] = [];
    const finals: Float32Array[] = [];
    for (let r = 0; r < 2; r++) {
      const pnet = createPruningNet(net, { seed: 1, shared: true });
      const stepper = await ParallelStepper.create(pnet, { workers: 2 });
      const l: number[] = [];
      try {
        await trainPruningNet({ ...common, pnet, stepper, onProgress: losses(l) });
      } finally {
        await stepper.close();
      }
      runs.push(l);
      finals.push(pnet.state.params.w2);
    }
    expect(runs[0]?.length).toBe(10);
    expect(runs[1]).toEqual(runs[0]);
    expect(bytes(finals[1] as Float32Array).equals(bytes(finals[0] as Float32Array))).toBe(true);

    // Interrupted after epoch 1, resumed in a fresh PruningNet with fresh workers.
    const ck = join(dir, 'par');
    const first: number[] = [];
    const stop = new AbortController();
    const a = createPruningNet(net, { seed: 1, shared: true });
    const sa = await ParallelStepper.create(a, { workers: 2 });
    try {
      await trainPruningNet({
        ...common,
        pnet: a,
        stepper: sa,
        checkpointDir: ck,
        signal: stop.signal,
        onProgress: (p) => {
          losses(first)(p);
          if (p.phase === 'checkpoint') stop.abort();
        },
      });
    } finally {
      await sa.close();
    }
    const rest: number[] = [];
    const b = createPruningNet(net, { seed: 1, shared: true });
    const sb = await ParallelStepper.create(b, { workers: 2 });
    try {
      await trainPruningNet({
        ...common,
        pnet: b,
        stepper: sb,
        resumeFrom: ck,
        onProgress: losses(rest),
      });
    } finally {
      await sb.close();
    }
    expect([...first, ...rest]).toEqual(runs[0]);
  });

  it('1 worker reproduces in-process training bit for bit', async () => {
    const net = tinyNet();
    const { train } = toyData(192, 32, 8);
    const common = { data: train, epochs: 1, lr: 0.05, seed: 4 };
    const local: number[] = [];
    const p0 = createPruningNet(net, { seed: 2 });
    await trainPruningNet({ ...common, pnet: p0, onProgress: losses(local) });
    const worker: number[] = [];
    const p1 = createPruningNet(net, { seed: 2, shared: true });
    const s1 = await ParallelStepper.create(p1, { workers: 1 });
    try {
      await trainPruningNet({ ...common, pnet: p1, stepper: s1, onProgress: losses(worker) });
    } finally {
      await s1.close();
    }
    expect(worker).toEqual(local);
    expect(bytes(p1.state.params.small).equals(bytes(p0.state.params.small))).toBe(true);
  });
});

describe('EvaluationWorkers', () => {
  it('returns the in-process results, in request order', async () => {
    const net = tinyNet();
    const { recal, val } = toyData(192, 32, 8);
    const pnet = createPruningNet(net, { seed: 6, shared: true });
    const sets = { recal: collectImages(recal, { maxBatches: 3 }), val: collectImages(val) };
    const encs = [
      fullEncoding(net),
      uniformEncoding(net, 0.5),
      sampleEncoding(net, 1, 1),
      sampleEncoding(net, 1, 2),
    ];
    const pool = await EvaluationWorkers.create(pnet, sets, {
      workers: 2,
      recalBatches: 3,
      batchSize: 32,
    });
    let got: Awaited<ReturnType<typeof pool.evaluateMany>>;
    try {
      got = await pool.evaluateMany(encs);
    } finally {
      await pool.close();
    }
    const want = encs.map((e) =>
      evaluateCandidate(pnet, e, { ...sets, recalBatches: 3, batchSize: 32 }),
    );
    expect(got.map((r) => [r.top1, r.macs, r.valImages])).toEqual(
      want.map((r) => [r.top1, r.macs, r.valImages]),
    );
    expect(new Set(got.map((r) => r.macs)).size).toBe(4);
  });

  it('scores a smaller slice per request as a pool of exactly that slice would', async () => {
    const net = tinyNet();
    const { recal, val } = toyData(192, 32, 8);
    const pnet = createPruningNet(net, { seed: 7, shared: true });
    const sets = { recal: collectImages(recal, { maxBatches: 3 }), val: collectImages(val) };
    const encs = [fullEncoding(net), sampleEncoding(net, 1, 3)];
    const pool = await EvaluationWorkers.create(pnet, sets, {
      workers: 2,
      recalBatches: 3,
      batchSize: 16,
    });
    let small: Awaited<ReturnType<typeof pool.evaluateMany>>;
    try {
      small = await pool.evaluateMany(encs, { recalBatches: 1, valBatches: 1 });
      await expect(pool.evaluate(encs[0]!, { valBatches: 0 })).rejects.toThrow(/valBatches/);
    } finally {
      await pool.close();
    }
    const want = encs.map((e) =>
      evaluateCandidate(pnet, e, {
        recal: collectImages(recal, { maxBatches: 1 }),
        val: sets.val,
        recalBatches: 1,
        batchSize: 16,
        valBatches: 1,
      }),
    );
    expect(small.map((r) => [r.top1, r.recalBatches, r.valImages])).toEqual(
      want.map((r) => [r.top1, r.recalBatches, r.valImages]),
    );
    expect(small[0]!.valImages).toBe(16);
  });
});
