/**
 * PruningNet training: exact resume from checkpoints (after an epoch and mid-epoch),
 * checkpoint integrity checks, no tensor leaks across training steps and evaluations,
 * the lazy momentum update against dense SGD, and learning on a toy task.
 */
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullEncoding, uniformEncoding } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import {
  CheckpointError,
  loadCheckpoint,
  resolveCheckpoint,
} from '../src/checkpoint/checkpoint.js';
import { collectImages } from '../src/evaluate/data.js';
import { evaluateCandidate } from '../src/evaluate/evaluate.js';
import { CatchUp, flushRows } from '../src/pruningnet/generator.js';
import { createPruningNet, sampleEncoding } from '../src/pruningnet/pruningnet.js';
import {
  allLayers,
  GenScratch,
  generateLayers,
  planCrops,
  updateLayers,
} from '../src/pruningnet/step.js';
import { linearOptim } from '../src/train/schedule.js';
import { type TrainProgress, trainPruningNet } from '../src/train/trainer.js';
import { bytes, tinyNet, toyData } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
  dir = await mkdtemp(join(tmpdir(), 'metaprune-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 320 toy images (288 sub-train), batches of 32: 9 steps per epoch. */
const data = () => toyData(320, 32, 8);

function collectLosses(into: number[]): (p: TrainProgress) => void {
  return (p) => {
    if (p.phase === 'step') into.push(p.stepLoss);
  };
}

describe('resume', () => {
  it('a run interrupted after epoch 1 (and one interrupted mid-epoch) continues exactly', async () => {
    const net = tinyNet();
    const { train } = data();
    const common = { data: train, epochs: 3, lr: 0.05, seed: 7 };

    const full: number[] = [];
    const a = createPruningNet(net, { seed: 1 });
    const ra = await trainPruningNet({ ...common, pnet: a, onProgress: collectLosses(full) });
    expect(full.length).toBe(27);
    expect(ra.history.length).toBe(3);

    // Interrupted after epoch 1: abort as soon as its checkpoint is written.
    const ckA = join(dir, 'after-epoch');
    const first: number[] = [];
    const stop = new AbortController();
    const b = createPruningNet(net, { seed: 1 });
    const rb = await trainPruningNet({
      ...common,
      pnet: b,
      checkpointDir: ckA,
      signal: stop.signal,
      onProgress: (p) => {
        collectLosses(first)(p);
        if (p.phase === 'checkpoint' && p.epoch === 1) stop.abort();
      },
    });
    expect(rb.stopped).toBe(true);
    expect(rb.position).toEqual({ epoch: 1, step: 0, globalStep: 9 });
    const rest: number[] = [];
    const c = createPruningNet(net, { seed: 1 });
    const rc = await trainPruningNet({
      ...common,
      pnet: c,
      resumeFrom: ckA,
      onProgress: collectLosses(rest),
    });
    expect(rc.stopped).toBe(false);
    expect([...first, ...rest]).toEqual(full);
    expect(rc.history).toEqual(
      ra.history.map((h, i) => ({ ...h, seconds: rc.history[i]?.seconds })),
    );
    expect(bytes(c.state.params.w2).equals(bytes(a.state.params.w2))).toBe(true);
    expect(bytes(c.state.momentum.small).equals(bytes(a.state.momentum.small))).toBe(true);

    // Interrupted in the middle of epoch 0 (lazily updated rows still lag behind).
    const ckB = join(dir, 'mid-epoch');
    const early: number[] = [];
    const stop2 = new AbortController();
    const d = createPruningNet(net, { seed: 1 });
    await trainPruningNet({
      ...common,
      pnet: d,
      checkpointDir: ckB,
      signal: stop2.signal,
      onProgress: (p) => {
        collectLosses(early)(p);
        if (p.phase === 'step' && p.globalStep === 4) stop2.abort();
      },
    });
    expect(early.length).toBe(4);
    const late: number[] = [];
    const e = createPruningNet(net, { seed: 1 });
    await trainPruningNet({ ...common, pnet: e, resumeFrom: ckB, onProgress: collectLosses(late) });
    expect([...early, ...late]).toEqual(full);
    expect(bytes(e.state.params.b2).equals(bytes(a.state.params.b2))).toBe(true);
  });

  it('refuses to resume with different settings', async () => {
    const net = tinyNet();
    const { train } = data();
    const ck = join(dir, 'settings');
    const stop = new AbortController();
    await trainPruningNet({
      pnet: createPruningNet(net, { seed: 1 }),
      data: train,
      epochs: 2,
      lr: 0.05,
      checkpointDir: ck,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.phase === 'checkpoint') stop.abort();
      },
    });
    await expect(
      trainPruningNet({
        pnet: createPruningNet(net, { seed: 1 }),
        data: train,
        epochs: 2,
        lr: 0.1,
        resumeFrom: ck,
      }),
    ).rejects.toThrow(/lr was 0.05, now 0.1/);
  });
});

describe('checkpoint integrity', () => {
  it('names the file that is corrupt, truncated or missing', async () => {
    const net = tinyNet();
    const { train } = data();
    const ck = join(dir, 'integrity');
    const pnet = createPruningNet(net, { seed: 2 });
    await trainPruningNet({
      pnet,
      data: train,
      epochs: 1,
      stepsPerEpoch: 2,
      lr: 0.05,
      checkpointDir: ck,
    });
    const cdir = await resolveCheckpoint(ck);
    const loaded = await loadCheckpoint(ck);
    expect(loaded.manifest.position).toEqual({ epoch: 1, step: 0, globalStep: 2 });
    expect(bytes(loaded.pnet.state.params.w2).equals(bytes(pnet.state.params.w2))).toBe(true);

    const file = join(cdir, 'params.w2.f32');
    const orig = await readFile(file);
    const bad = Buffer.from(orig);
    bad[100] = ((bad[100] as number) + 1) & 0xff;
    await writeFile(file, bad);
    await expect(loadCheckpoint(ck)).rejects.toThrow(CheckpointError);
    await expect(loadCheckpoint(ck)).rejects.toThrow(/params\.w2\.f32: sha256 mismatch/);

    await writeFile(file, orig);
    await truncate(join(cdir, 'momentum.b2.f32'), 10);
    await expect(loadCheckpoint(ck)).rejects.toThrow(
      /momentum\.b2\.f32: has 10 bytes, expected \d+ \(truncated/,
    );

    await rm(join(cdir, 'manifest.json'));
    await expect(loadCheckpoint(cdir)).rejects.toThrow(/manifest\.json/);
    await expect(loadCheckpoint(join(dir, 'nowhere'))).rejects.toThrow(
      /not a PruningNet checkpoint/,
    );
  });
});

describe('lazy momentum', () => {
  it('equals dense SGD with momentum and linear decay, rows a step does not touch included', () => {
    // The optimiser alone (fixed synthetic crop gradients, so the comparison is not blurred
    // by the network's sensitivity): dense = every row brought up to date after every step.
    const net = tinyNet();
    const optim = linearOptim({ lr: 0.05, totalSteps: 10, momentum: 0.9, classifierLrScale: 0.5 });
    const lazy = createPruningNet(net, { seed: 3 });
    const dense = createPruningNet(net, { seed: 3 });
    const L = lazy.layout;
    let lagging = 0;
    for (const [p, flushEveryStep] of [
      [lazy, false],
      [dense, true],
    ] as const) {
      const cu = new CatchUp(optim);
      const scratch = new GenScratch(L);
      const arena = new Float32Array(L.totalRows);
      const grads = new Float32Array(L.gradArenaSize);
      for (let t = 0; t < 7; t++) {
        const enc = sampleEncoding(net, 5, t);
        const plan = planCrops(L, enc);
        generateLayers(L, p.state, enc, plan, scratch, arena, allLayers(L), { t, cu });
        for (let i = 0; i < grads.length; i++) grads[i] = Math.sin(i * 0.37 + t);
        const u = { t, lr: optim.lrAt(t), momentum: optim.momentum, classifierLrScale: 0.5 };
        updateLayers(L, p.state, plan, scratch, [grads], [1], u, allLayers(L));
        if (!flushEveryStep && t === 6)
          lagging = p.state.lastStep.filter((v) => v >= 0 && v < 6).length;
        if (flushEveryStep) flushRows(L, p.state, t + 1, new CatchUp(optim));
      }
      flushRows(L, p.state, 7, new CatchUp(optim));
    }
    expect(lagging).toBeGreaterThan(100);
    for (const k of ['w2', 'b2', 'small'] as const) {
      const a = lazy.state.params[k];
      const b = dense.state.params[k];
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (b[i] as number)));
        maxAbs = Math.max(maxAbs, Math.abs(b[i] as number));
      }
      expect(maxDiff / maxAbs).toBeLessThan(1e-6);
      const m = lazy.state.momentum[k];
      const md = dense.state.momentum[k];
      let mDiff = 0;
      let mAbs = 0;
      for (let i = 0; i < m.length; i++) {
        mDiff = Math.max(mDiff, Math.abs((m[i] as number) - (md[i] as number)));
        mAbs = Math.max(mAbs, Math.abs(md[i] as number));
      }
      expect(mDiff / mAbs).toBeLessThan(1e-6);
    }
  });
});

describe('no leaks', () => {
  it('keeps tf.memory() flat across training steps and evaluations', async () => {
    const net = tinyNet();
    const { train, recal, val } = data();
    const pnet = createPruningNet(net, { seed: 4 });
    const evalOpts = {
      recal: collectImages(recal, { maxBatches: 2 }),
      val: collectImages(val),
      recalBatches: 2,
      batchSize: 32,
    };
    await trainPruningNet({ pnet, data: train, epochs: 1, stepsPerEpoch: 2, lr: 0.05 });
    evaluateCandidate(pnet, fullEncoding(net), evalOpts);
    const before = tf.memory();
    await trainPruningNet({
      pnet: createPruningNet(net, { seed: 4 }),
      data: train,
      epochs: 1,
      stepsPerEpoch: 5,
      lr: 0.05,
    });
    for (const s of [0.3, 0.6, 1]) evaluateCandidate(pnet, uniformEncoding(net, s), evalOpts);
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
  });
});

describe('learning', () => {
  it('a tiny PruningNet learns the toy task; evaluation reports top-1, MACs, params', async () => {
    const net = tinyNet();
    const { train, recal, val } = data();
    const pnet = createPruningNet(net, { seed: 5 });
    // Scale ids >= 15 (>= 55% width): this net's narrowest choices are 1-channel layers.
    const r = await trainPruningNet({ pnet, data: train, epochs: 5, lr: 0.05, minScaleId: 15 });
    expect(r.history.length).toBe(5);
    const first = r.history[0] as { loss: number; accuracy: number };
    const last = r.history[4] as { loss: number; accuracy: number };
    expect(last.loss).toBeLessThan(first.loss - 0.2);
    expect(last.accuracy).toBeGreaterThan(0.5);
    const res = evaluateCandidate(pnet, fullEncoding(net), {
      recal: collectImages(recal, { maxBatches: 4 }),
      val: collectImages(val),
      recalBatches: 4,
      batchSize: 32,
    });
    expect(res.valImages).toBe(32);
    expect(res.recalBatches).toBe(4);
    expect(res.top1).toBeGreaterThan(0.5);
    expect(res.macs).toBeGreaterThan(0);
    expect(res.params).toBeGreaterThan(0);
  });
});
