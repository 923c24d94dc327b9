/**
 * Inference form: a training-form export folded (BN into convs, activations fused, input
 * normalisation into the stem) and written as a tfjs graph model predicts what the
 * training form predicts — checked against the Layers model tfjs itself runs (an
 * independent computation: unfolded BN, separate activations), on real Fashion-MNIST.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNetwork, type Encoding, type Network } from '@metaprune/core';
import { type Dataset, loadDataset, preprocessConfig } from '@metaprune/data';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import {
  comparePredictions,
  convertToInference,
  exportModel,
  loadDeployedModel,
  NotAnExportError,
} from '../src/deploy/index.js';
import { buildPlainModel, plainModelMetadata } from '../src/plain/index.js';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const RESULT_MODEL = join(repoRoot, 'docs/results/models/mobilenetv2-w0.5/metapruning-25pct');

let ds: Dataset;
let dir: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
  ds = await loadDataset({ name: 'fashion-mnist' });
  dir = await mkdtemp(join(tmpdir(), 'metaprune-deploy-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(0);
});

function encodingFor(net: Network, seed: number): Encoding {
  let s = seed >>> 0;
  return net.genes.map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % 28);
  });
}

/** Moves every BN's statistics and affine parameters off their defaults. */
function perturbBatchNorm(model: tf.LayersModel, seed: number): void {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const n = layer.getWeights()[0]?.shape[0] as number;
    const v = (lo: number, hi: number) =>
      Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
    tf.tidy(() =>
      layer.setWeights([
        tf.tensor1d(v(0.5, 1.5)),
        tf.tensor1d(v(-0.3, 0.3)),
        tf.tensor1d(v(-0.5, 0.5)),
        tf.tensor1d(v(0.2, 2)),
      ]),
    );
  }
}

describe('inference form', () => {
  // 1,000 test images here (10,000 take ~70 s of CPU); `metaprune convert` checks all
  // 10,000 by default (docs/benchmarks.md, W6).
  test('a docs/results model converted: same probabilities on 1,000 test images, 2x fewer ops', async () => {
    const out = join(dir, 'mp25');
    const meta = await convertToInference(RESULT_MODEL, out);
    const training = await loadDeployedModel(RESULT_MODEL);
    const inference = await loadDeployedModel(out);
    try {
      expect(training.form).toBe('training');
      expect(inference.form).toBe('inference');
      const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
      expect(json.format).toBe('graph-model');
      const ops = (json.modelTopology.node as { op: string }[]).filter((n) => n.op !== 'Const');
      const folding = meta['folding'] as Record<string, number>;
      expect(folding['foldedBatchNorms']).toBe(52);
      expect(folding['fusedActivations']).toBe(35);
      expect(ops.map((n) => n.op)).not.toContain('FusedBatchNorm');
      // 155 training layers -> 53 fused convs, 10 adds, 2 pads, mean, matmul, softmax, I/O.
      expect(ops.length).toBeLessThanOrEqual(72);
      expect((meta['runtime'] as { imports: string[] }).imports).toEqual([]);
      const readme = await readFile(join(out, 'README.md'), 'utf8');
      expect(readme).toContain('tf.loadGraphModel');

      const agree = comparePredictions(
        training,
        inference,
        ds.test.images.subarray(0, 1000 * 784),
        [28, 28, 1],
        { scale: 1 / 255 },
      );
      expect(agree.images).toBe(1000);
      expect(agree.maxAbsDiff).toBeLessThanOrEqual(1e-4);
      expect(agree.top1Mismatches).toBe(0);
    } finally {
      training.dispose();
      inference.dispose();
    }
  }, 120_000);

  test('ResNet with 3-channel bilinear input, perturbed BN, logits: folded form matches', async () => {
    const net = buildNetwork({
      family: 'resnet50',
      preset: 'small',
      width: 0.25,
      inputChannels: 3,
      inputSize: 32,
    });
    const enc = encodingFor(net, 5);
    const pre = preprocessConfig([20, 24, 1], { mean: 0.3, std: 0.4, size: 32, channels: 3 });
    const model = buildPlainModel(net, enc, { inputPreprocess: pre, seed: 3 });
    perturbBatchNorm(model, 11);
    const meta = plainModelMetadata(net, enc, {
      preprocess: pre,
      classNames: Array.from({ length: net.spec.numClasses }, (_, i) => `c${i}`),
    });
    const trainingDir = join(dir, 'resnet-training');
    const inferenceDir = join(dir, 'resnet-inference');
    await exportModel(model, trainingDir, meta, { form: 'training', softmax: false });
    const written = await exportModel(model, inferenceDir, meta, { softmax: false });
    expect(written['form']).toBe('inference');
    model.dispose();
    const a = await loadDeployedModel(trainingDir);
    const b = await loadDeployedModel(inferenceDir);
    try {
      const images = Float32Array.from(
        { length: 64 * 20 * 24 },
        (_, i) => ((i * 7919) % 256) / 255,
      );
      const agree = comparePredictions(a, b, images, [20, 24, 1], { batchSize: 32 });
      expect(agree.images).toBe(64);
      // logits: relative to their scale
      const scale = tf.tidy(() => tf.max(tf.abs(a.predict(tf.ones([1, 20, 24, 1])))).dataSync()[0]);
      expect(agree.maxAbsDiff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale as number));
      expect(agree.top1Mismatches).toBe(0);
    } finally {
      a.dispose();
      b.dispose();
    }
  }, 120_000);

  test('bad input: not an export, already converted', async () => {
    const empty = join(dir, 'empty');
    await expect(convertToInference(empty, join(dir, 'x'))).rejects.toThrow(NotAnExportError);
    await expect(loadDeployedModel(empty)).rejects.toThrow(/is not an exported model/);
    await expect(convertToInference(join(dir, 'mp25'), join(dir, 'y'))).rejects.toThrow(
      /already in the inference form/,
    );
    const foreign = join(dir, 'foreign');
    await rm(foreign, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(foreign));
    await writeFile(
      join(foreign, 'model.json'),
      JSON.stringify({ modelTopology: {}, weightsManifest: [] }),
    );
    await expect(loadDeployedModel(foreign)).rejects.toThrow(/not exported by metaprune/);
  });
});
