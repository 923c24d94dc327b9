import {
  buildNetwork,
  fullEncoding,
  LatencyPredictor,
  latencyUnits,
  planLatencyTable,
  validateLatencyTable,
  widthOf,
} from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assembleRows,
  contextDesign,
  designCovers,
  designEncoding,
  FIT_ATTEMPTS,
  initBackend,
  measureEntries,
  measureInContext,
  measureInWorkers,
  measureJob,
  measurementJobs,
  measureNetworkLatency,
  measurePredictionError,
  NetworkRunner,
  profileLatencyTable,
  rowsFromContext,
  runUnit,
  sampleEncodings,
  timeRuns,
  unitWeights,
  WARMUP_WINDOW,
  warmUpUntilStable,
} from '../src/index.js';

// Tiny networks and few repeats: these tests check what is measured and how it is put
// together, not how fast anything is (no timed assertions).
const TINY = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.1, inputSize: 16 });
const FAST = { warmup: 1, repeats: 3 } as const;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

describe('latency units on the wasm backend', () => {
  it('runs every unit with the right output shape and frees its intermediates', () => {
    const enc = fullEncoding(TINY);
    for (const u of latencyUnits(TINY)) {
      const cin = widthOf(u.layer.in, enc);
      const cout = u.layer.kind === 'depthwise' ? cin : widthOf(u.layer.out, enc);
      const w = unitWeights(u, cin, cout);
      const x =
        u.layer.kind === 'fc'
          ? tf.zeros([1, u.poolBeforeSize, u.poolBeforeSize, cin])
          : tf.zeros([1, u.layer.inSize, u.layer.inSize, cin]);
      const addShape =
        u.layer.kind === 'fc' ? [1, cout] : [1, u.layer.outSize, u.layer.outSize, cout];
      const add = u.addAfter ? tf.zeros(addShape) : undefined;
      const before = tf.memory().numTensors;
      const y = runUnit(u, x, w, add);
      expect(y.shape).toEqual(addShape);
      expect(tf.memory().numTensors).toBe(before + 1);
      y.dispose();
      x.dispose();
      add?.dispose();
      w.filter.dispose();
      w.bias.dispose();
    }
  });

  it('runs a whole pruned network to logits without leaking tensors', () => {
    const enc = sampleEncodings(TINY, 1, 5)[0]!;
    const before = tf.memory().numTensors;
    const runner = new NetworkRunner(TINY, enc, 2);
    const x = runner.input();
    const y = runner.forward(x);
    expect(y.shape).toEqual([2, TINY.spec.numClasses]);
    expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
    y.dispose();
    runner.run(x);
    x.dispose();
    runner.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('times runs: median, spread and repeats of the samples', () => {
    let calls = 0;
    const t = timeRuns(
      () => {
        calls++;
      },
      { warmup: 2, repeats: 5 },
    );
    expect(calls).toBeGreaterThanOrEqual(7);
    expect(t.repeats).toBe(t.samples.length);
    expect(t.medianMs).toBeGreaterThanOrEqual(0);
    expect(t.spreadMs).toBeGreaterThanOrEqual(0);
  });
});

describe('latency tables', () => {
  it('measures one job per (signature, cin) over its couts', () => {
    const plan = planLatencyTable(TINY, { points: 3 });
    const jobs = measurementJobs(plan);
    expect(jobs.reduce((s, j) => s + j.couts.length, 0)).toBe(plan.measurements);
    const entries = measureJob(jobs[0]!, 1, FAST);
    expect(entries).toHaveLength(jobs[0]!.couts.length);
    for (const e of entries) {
      expect(e.medianMs).toBeGreaterThan(0);
      expect(e.repeats).toBeGreaterThanOrEqual(2);
    }
  });

  it('shards cover the plan exactly once and assemble into every row', async () => {
    const plan = planLatencyTable(TINY, { points: 2 });
    const a = await measureEntries(plan, { ...FAST, shard: { index: 0, count: 2 } });
    const b = await measureEntries(plan, { ...FAST, shard: { index: 1, count: 2 } });
    expect(a.length + b.length).toBe(plan.measurements);
    const rows = assembleRows(plan, [...a, ...b]);
    expect(rows).toHaveLength(plan.rows);
    expect(() => assembleRows(plan, a)).toThrow(/no measurement/);
  });

  it('the in-context design meets every (cin, cout) of every layer', () => {
    for (const [net, grid] of [
      [buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 }), 'full'],
      [buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 }), { points: 6 }],
      [buildNetwork({ family: 'mobilenetv1', preset: 'small', width: 0.5 }), { points: 4 }],
      // ResNet's identity blocks make odd cycles of genes (3 colours) and tied 3x3 convs
      [buildNetwork({ family: 'resnet50', preset: 'small', width: 0.25 }), { points: 5 }],
    ] as const) {
      const d = contextDesign(net, grid);
      expect(d.configs).toBe(d.levels * d.levels);
      expect(designCovers(net, planLatencyTable(net, grid), d)).toBe(true);
      const enc = designEncoding(net, d, d.configs - 1);
      expect(enc).toHaveLength(net.genes.length);
    }
    expect(contextDesign(TINY, 'full').configs).toBe(31 * 31);
  });

  it('times every layer inside whole forwards and turns that into table rows', async () => {
    const grid = { points: 2 } as const;
    const plan = planLatencyTable(TINY, grid);
    const d = contextDesign(TINY, grid);
    const samples = await measureInContext(TINY, grid, FAST);
    expect(samples).toHaveLength(d.configs * TINY.layers.length);
    for (const s of samples) expect(s.medianMs).toBeGreaterThan(0);
    const rows = rowsFromContext(plan, samples);
    expect(rows).toHaveLength(plan.rows);
    const half = await measureInContext(TINY, grid, { ...FAST, shard: { index: 0, count: 2 } });
    expect(half).toHaveLength(Math.ceil(d.configs / 2) * TINY.layers.length);
    expect(() => rowsFromContext(plan, half)).toThrow(/no in-context measurement/);
  });

  it('measures on worker threads (each with its own backend), either method', async () => {
    const grid = { points: 2 } as const;
    const plan = planLatencyTable(TINY, grid);
    const d = contextDesign(TINY, grid);
    const seen: number[] = [];
    const ctx = await measureInWorkers(TINY.spec, grid, d.configs, {
      workers: 2,
      backend: 'wasm',
      ...FAST,
      warmupMs: 20,
      onProgress: (p) => seen.push(p.done),
    });
    expect(rowsFromContext(plan, ctx.samples)).toHaveLength(plan.rows);
    expect(Math.max(...seen)).toBe(d.configs);
    const iso = await measureInWorkers(TINY.spec, grid, plan.measurements, {
      workers: 2,
      backend: 'wasm',
      method: 'isolated',
      ...FAST,
      warmupMs: 20,
    });
    expect(iso.entries).toHaveLength(plan.measurements);
    expect(assembleRows(plan, iso.entries)).toHaveLength(plan.rows);
  });

  it('profiles a tiny network: a valid table, a fitted constant, an error report', async () => {
    const progress: number[] = [];
    const r = await profileLatencyTable(TINY, {
      backend: 'wasm',
      grid: { points: 3 },
      ...FAST,
      fitEncodings: 3,
      warmupMs: 100,
      networkTiming: { warmup: 1, repeats: 3 },
      onProgress: (p) => progress.push(p.done),
    });
    const t = r.table;
    validateLatencyTable(TINY, t);
    expect(t.rows).toHaveLength(r.plan.rows);
    expect(t.interpolated).toBe(true);
    expect(t.backend).toBe('wasm');
    expect(t.batchSize).toBe(1);
    expect(Number.isFinite(t.constantMs)).toBe(true);
    expect(r.fit).toHaveLength(3);
    expect(progress[progress.length - 1]).toBe(contextDesign(TINY, { points: 3 }).configs);
    expect(r.measurements).toBe(contextDesign(TINY, { points: 3 }).configs);
    // the constant is the median residual of the fit samples, clipped at 0 (a fixed
    // overhead is never negative; this tiny coarse-grid table often has a negative median)
    const residuals = r.fit.map((f) => f.measuredMs - f.layerSumMs).sort((x, y) => x - y);
    expect(t.constantMs).toBeCloseTo(Math.max(0, residuals[1]!), 12);
    expect(t.constantMs).toBeGreaterThanOrEqual(0);
    // fitted on the delivered path; a negative residual was re-measured before clipping
    expect(r.calibratedOn).toBe('delivered');
    expect(r.fitResidualMs).toBeCloseTo(residuals[1]!, 12);
    if (r.fitResidualMs < 0) expect(r.constantAttempts).toBe(FIT_ATTEMPTS);
    else expect(r.constantAttempts).toBeGreaterThanOrEqual(1);
    const p = new LatencyPredictor(TINY, t);
    for (const f of r.fit) expect(p.layerSumMs(f.encoding)).toBe(f.layerSumMs);
    expect(p.lowerBoundMs()).toBeGreaterThan(0);

    const v = await measurePredictionError(TINY, t, { encodings: 3, ...FAST, warmupMs: 50 });
    expect(v.encodings).toBe(3);
    expect(v.samples).toHaveLength(3);
    for (const s of v.samples) {
      expect(s.measuredMs).toBeGreaterThan(0);
      expect(s.predictedMs).toBe(p.predict(s.encoding));
    }
    for (const k of ['medianAbsErrorPct', 'p95AbsErrorPct', 'maxAbsErrorPct'] as const) {
      expect(Number.isFinite(v[k])).toBe(true);
      expect(v[k]).toBeGreaterThanOrEqual(0);
    }
    const one = measureNetworkLatency(TINY, fullEncoding(TINY), FAST);
    expect(one.medianMs).toBeGreaterThan(0);
  });

  it('profiles with isolated layer timing when asked', async () => {
    const r = await profileLatencyTable(TINY, {
      backend: 'wasm',
      method: 'isolated',
      grid: { points: 2 },
      ...FAST,
      fitEncodings: 1,
      warmupMs: 20,
      networkTiming: { warmup: 0, repeats: 1, passes: 1 },
    });
    validateLatencyTable(TINY, r.table);
    expect(r.table.warmupRuns).toBe(1);
  });

  it('measures the full grid when asked (no interpolation)', async () => {
    const small = buildNetwork({
      family: 'mobilenetv1',
      preset: 'small',
      width: 0.1,
      inputSize: 8,
    });
    const r = await profileLatencyTable(small, {
      backend: 'wasm',
      grid: 'full',
      warmup: 0,
      repeats: 1,
      fitEncodings: 1,
      warmupMs: 20,
      networkTiming: { warmup: 0, repeats: 1 },
    });
    expect(r.table.interpolated).toBe(false);
    validateLatencyTable(small, r.table);
  });
});

describe('warm-up until successive windows agree', () => {
  const spin = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  it('stops once a run time that falls settles, not before the minimum', () => {
    // 3 ms per run for the first 600 ms, then 1 ms: settled after two 1 ms windows
    const t0 = performance.now();
    const r = warmUpUntilStable(() => spin(performance.now() - t0 < 600 ? 3 : 1), 100);
    expect(r.settled).toBe(true);
    expect(r.ms).toBeGreaterThanOrEqual(600 + WARMUP_WINDOW.ms);
    expect(r.lastWindowMs).toBeLessThan(2);
  });

  it('gives up at the cap when windows never agree', () => {
    let i = 0;
    // alternate windows between 1 ms and 2 ms runs: never within 3%
    const start = performance.now();
    const r = warmUpUntilStable(() => {
      i = Math.floor((performance.now() - start) / WARMUP_WINDOW.ms);
      spin(i % 2 === 0 ? 1 : 2);
    }, 100);
    expect(r.settled).toBe(false);
    expect(r.ms).toBeGreaterThanOrEqual(WARMUP_WINDOW.ms * WARMUP_WINDOW.maxFactor);
  });
});
