/**
 * Retraining plain pruned networks on Fashion-MNIST: a short run learns well above chance,
 * reports core's MACs / params, keeps tf.memory().numTensors flat across steps and
 * evaluations, frees everything on dispose and on abort.
 */
import { buildNetwork, countCost, uniformEncoding } from '@metaprune/core';
import { loadDataset, type Subset, splitTrainVal } from '@metaprune/data';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import {
  evaluatePlain,
  learningRateAt,
  type RetrainProgress,
  retrainPlain,
} from '../src/plain/index.js';

let train: Subset;
let test1k: Subset;

beforeAll(async () => {
  await initBackend();
  const ds = await loadDataset({ name: 'fashion-mnist' });
  const split = splitTrainVal(ds, { valPerClass: 100 });
  train = split.train;
  // The first 1000 test images (about 100 per class).
  test1k = { ...split.test, name: 'test-1k', indices: split.test.indices.subarray(0, 1000) };
});

describe('learning-rate schedule', () => {
  test('warm-up, then cosine or linear decay to 0', () => {
    expect(learningRateAt(0, 100, 0.4, 'cosine', 10)).toBeCloseTo(0.04, 10);
    expect(learningRateAt(9, 100, 0.4, 'cosine', 10)).toBeCloseTo(0.4, 10);
    expect(learningRateAt(10, 100, 0.4, 'cosine', 10)).toBeCloseTo(0.4, 10);
    expect(learningRateAt(55, 100, 0.4, 'cosine', 10)).toBeCloseTo(0.2, 10);
    expect(learningRateAt(55, 100, 0.4, 'linear', 10)).toBeCloseTo(0.2, 10);
    expect(learningRateAt(100, 100, 0.4, 'linear', 10)).toBe(0);
    expect(learningRateAt(99, 100, 0.4, 'cosine', 0)).toBeGreaterThan(0);
    expect(learningRateAt(99, 100, 0.4, 'cosine', 0)).toBeLessThan(0.001);
  });
});

describe('retrainPlain', () => {
  test('one short epoch of MobileNetV1 (small, width 0.5, uniform 0.25) reaches > 50% test top-1; memory flat', async () => {
    const net = buildNetwork({
      family: 'mobilenetv1',
      preset: 'small',
      width: 0.5,
      inputChannels: 1,
    });
    const enc = uniformEncoding(net, 0.25);
    const before = tf.memory().numTensors;
    const trainCounts: number[] = [];
    const evalCounts: number[] = [];
    const events: RetrainProgress[] = [];
    const out = await retrainPlain({
      net,
      encoding: enc,
      data: { train, test: test1k },
      epochs: 1,
      maxTrainImages: 4096,
      batchSize: 32,
      lr: 0.2,
      augment: false,
      seed: 0,
      evalBatchSize: 200,
      onProgress: (p) => {
        events.push(p);
        (p.phase === 'train' ? trainCounts : evalCounts).push(tf.memory().numTensors);
      },
    });
    const { result, model } = out;
    console.log(
      `retrain: test_top1 ${result.test_top1.toFixed(3)} on ${result.test_images} images, ` +
        `${result.seconds.toFixed(1)} s, last train loss ${result.epochs[0]?.loss.toFixed(3)}`,
    );
    expect(result.test_top1).toBeGreaterThan(0.5);
    expect(result.test_images).toBe(1000);
    expect(result.macs).toBe(countCost(net, enc).macs);
    expect(result.params).toBe(countCost(net, enc).params);
    expect(result.epochs).toHaveLength(1);
    expect(result.epochs[0]!.test_top1).toBe(result.test_top1);
    expect(result.epochs[0]!.loss).toBeLessThan(Math.log(10));

    // Progress: 128 train steps in order, then the evaluation.
    const trainEvents = events.filter((e) => e.phase === 'train');
    expect(trainEvents.map((e) => e.step)).toEqual(Array.from({ length: 128 }, (_, i) => i + 1));
    expect(trainEvents.at(-1)!.fraction).toBe(1);
    expect(events.at(-1)!.phase).toBe('eval');
    expect(events.at(-1)!.step).toBe(1000);

    // No tensor accumulates from step to step (the first step creates momentum buffers).
    expect(new Set(trainCounts.slice(1))).toEqual(new Set([trainCounts[1]]));
    expect(new Set(evalCounts)).toEqual(new Set([evalCounts[0]]));
    // Repeated evaluations: flat too, and deterministic.
    const n0 = tf.memory().numTensors;
    const a = await evaluatePlain(model, test1k, { batchSize: 128 });
    const n1 = tf.memory().numTensors;
    const b = await evaluatePlain(model, test1k, { batchSize: 200 });
    expect(tf.memory().numTensors).toBe(n0);
    expect(n1).toBe(n0);
    expect(a).toBe(result.test_top1);
    expect(b).toBe(result.test_top1);

    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // ~45 s alone on 2 cores; headroom for a busy machine (the whole suite in parallel).
  }, 300_000);

  test('abort stops training, frees the model; bad arguments are refused', async () => {
    const net = buildNetwork({
      family: 'mobilenetv2',
      preset: 'small',
      width: 0.25,
      inputChannels: 1,
    });
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    let steps = 0;
    await expect(
      retrainPlain({
        net,
        encoding: uniformEncoding(net, 0.25),
        data: { train, test: test1k },
        epochs: 1,
        batchSize: 16,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'train' && ++steps === 3) controller.abort(new Error('stop now'));
        },
      }),
    ).rejects.toThrow('stop now');
    expect(steps).toBe(3);
    expect(tf.memory().numTensors).toBe(before);

    await expect(
      retrainPlain({ net, encoding: [1, 2], data: { train, test: test1k }, epochs: 1 }),
    ).rejects.toThrow(/genes/);
    const other = buildNetwork({
      family: 'mobilenetv2',
      preset: 'small',
      width: 0.25,
      numClasses: 5,
    });
    await expect(
      retrainPlain({
        net: other,
        encoding: uniformEncoding(other, 0.5),
        data: { train, test: test1k },
        epochs: 1,
      }),
    ).rejects.toThrow(/classes/);
    expect(tf.memory().numTensors).toBe(before);
  });
});
