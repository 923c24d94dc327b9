/**
 * Export of plain models: model.json + one weights file that plain @tensorflow/tfjs loads
 * with tf.loadLayersModel (in this process and in a separate Node process that imports
 * nothing but @tensorflow/tfjs), predicting the same as the in-memory model on real
 * Fashion-MNIST test images; metadata round-trips.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  buildNetwork,
  countCost,
  type Encoding,
  geneChannels,
  type Network,
} from '@metaprune/core';
import {
  type Dataset,
  loadDataset,
  type PreprocessConfig,
  preprocessConfig,
} from '@metaprune/data';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import {
  buildPlainModel,
  exportPlainModel,
  loadExportedModel,
  METADATA_FORMAT,
  MODEL_JSON,
  plainModelMetadata,
  WEIGHTS_FILE,
} from '../src/plain/index.js';

const run = promisify(execFile);
const repoRoot = join(import.meta.dirname, '..', '..', '..');

let ds: Dataset;
let dir: string;
let images: tf.Tensor4D;

beforeAll(async () => {
  await initBackend();
  ds = await loadDataset({ name: 'fashion-mnist' });
  dir = await mkdtemp(join(tmpdir(), 'metaprune-export-'));
  // 16 real test images, NHWC in [0, 1].
  const n = 16;
  images = tf.tidy(() =>
    tf.div(tf.tensor4d(ds.test.images.subarray(0, n * 784), [n, 28, 28, 1], 'float32'), 255),
  ) as tf.Tensor4D;
});

afterAll(async () => {
  images.dispose();
  await rm(dir, { recursive: true, force: true });
  expect(tf.memory().numTensors).toBe(0);
});

function encodingFor(net: Network, seed: number): Encoding {
  let s = seed >>> 0;
  return net.genes.map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 5 + (s % 26);
  });
}

/** Moves every BN's moving statistics off their defaults with training-mode passes. */
function warmBatchNorm(model: tf.LayersModel, x: tf.Tensor): void {
  for (let i = 0; i < 3; i++) tf.dispose(model.apply(x, { training: true }) as tf.Tensor);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const PRE: () => PreprocessConfig = () =>
  preprocessConfig([28, 28, 1], { mean: 0.286, std: 0.353, size: 32 });

describe('export / load round trip', () => {
  const net = buildNetwork({
    family: 'mobilenetv2',
    preset: 'small',
    width: 0.5,
    inputChannels: 1,
  });
  const enc = encodingFor(net, 3);

  test('writes model.json + one weights file; plain tf.loadLayersModel predicts the same', async () => {
    const out = join(dir, 'mbv2');
    const model = buildPlainModel(net, enc, { inputPreprocess: PRE(), seed: 7 });
    warmBatchNorm(model, images);
    const meta = plainModelMetadata(net, enc, {
      preprocess: PRE(),
      classNames: ds.classNames,
      dataset: 'fashion-mnist',
      test_top1: 0.875,
    });
    await exportPlainModel(model, out, meta);

    expect((await readdir(out)).sort()).toEqual([WEIGHTS_FILE, MODEL_JSON].sort());
    const json = JSON.parse(await readFile(join(out, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0]!.paths).toEqual([WEIGHTS_FILE]);
    const floats = json.weightsManifest[0]!.weights.reduce(
      (n, w) => n + w.shape.reduce((a, b) => a * b, 1),
      0,
    );
    expect((await stat(join(out, WEIGHTS_FILE))).size).toBe(floats * 4);
    expect(floats).toBe(model.countParams());
    // Only stock layer classes.
    const classes = new Set(
      (json.modelTopology as { config: { layers: { class_name: string }[] } }).config.layers.map(
        (l) => l.class_name,
      ),
    );
    for (const c of classes) {
      expect([
        'InputLayer',
        'ZeroPadding2D',
        'Conv2D',
        'DepthwiseConv2D',
        'BatchNormalization',
        'ReLU',
        'Add',
        'GlobalAveragePooling2D',
        'Dense',
        'Activation',
      ]).toContain(c);
    }

    // Metadata: what the brief asks for, round-tripped.
    const udm = json.userDefinedMetadata as Record<string, unknown>;
    expect(udm).toEqual({ ...meta, output: 'probabilities' });
    expect(udm['format']).toBe(METADATA_FORMAT);
    expect(udm['network']).toBe('mobilenetv2');
    expect(udm['preset']).toBe('small');
    expect(udm['width']).toBe(0.5);
    expect(udm['encoding']).toEqual([...enc]);
    expect(udm['channels']).toEqual(geneChannels(net, enc));
    expect(udm['macs']).toBe(countCost(net, enc).macs);
    expect(udm['params']).toBe(countCost(net, enc).params);
    expect(udm['inputShape']).toEqual([null, 28, 28, 1]);
    expect(udm['classNames']).toEqual([...ds.classNames]);
    expect(udm['test_top1']).toBe(0.875);

    const loaded = await loadExportedModel(out);
    expect(loaded.metadata).toEqual({ ...meta, output: 'probabilities' });
    const [want, got] = tf.tidy(() => [
      tf.softmax(model.predict(images) as tf.Tensor),
      loaded.model.predict(images) as tf.Tensor,
    ]);
    expect(got!.shape).toEqual([16, 10]);
    expect(maxAbsDiff(got!.dataSync(), want!.dataSync())).toBeLessThan(1e-5);
    // Probabilities: rows sum to 1.
    const p = got!.dataSync();
    for (let i = 0; i < 16; i++) {
      let s = 0;
      for (let k = 0; k < 10; k++) s += p[i * 10 + k]!;
      expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    }
    tf.dispose([want!, got!]);
    loaded.model.dispose();
    model.dispose();
  });

  test('logits export, and a separate Node process with only @tensorflow/tfjs loads it', async () => {
    const out = join(dir, 'mbv2-logits');
    const model = buildPlainModel(net, enc, { inputPreprocess: PRE(), seed: 8 });
    warmBatchNorm(model, images);
    const meta = plainModelMetadata(net, enc, { preprocess: PRE(), classNames: ds.classNames });
    await exportPlainModel(model, out, meta, { softmax: false });
    const want = tf.tidy(() => Array.from((model.predict(images) as tf.Tensor).dataSync()));

    const inputFile = join(dir, 'input.json');
    await writeFile(inputFile, JSON.stringify(Array.from(images.dataSync())));
    // Plain tfjs, default (cpu) backend, no engine code, no custom layers.
    const script = `
      import * as tf from '@tensorflow/tfjs';
      import { readFileSync } from 'node:fs';
      const dir = ${JSON.stringify(out)};
      const json = JSON.parse(readFileSync(dir + '/model.json', 'utf8'));
      const bin = readFileSync(dir + '/' + json.weightsManifest[0].paths[0]);
      const model = await tf.loadLayersModel(tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
        userDefinedMetadata: json.userDefinedMetadata,
      }));
      const x = tf.tensor4d(JSON.parse(readFileSync(${JSON.stringify(inputFile)}, 'utf8')), [16, 28, 28, 1]);
      const y = model.predict(x);
      process.stdout.write(JSON.stringify({
        backend: tf.getBackend(),
        y: Array.from(y.dataSync()),
        meta: model.getUserDefinedMetadata(),
      }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      maxBuffer: 16 << 20,
    });
    const res = JSON.parse(stdout) as {
      backend: string;
      y: number[];
      meta: Record<string, unknown>;
    };
    expect(res.backend).toBe('cpu');
    expect(res.meta).toEqual({ ...meta, output: 'logits' });
    expect(maxAbsDiff(res.y, want)).toBeLessThan(1e-4 * Math.max(1, ...want.map(Math.abs)));
    model.dispose();
  });

  test('ResNet with max pool, bilinear resizing and 1 -> 3 channel replication', async () => {
    const rnet = buildNetwork({
      family: 'resnet50',
      preset: 'imagenet',
      width: 0.25,
      inputSize: 40,
      numClasses: 10,
    });
    const renc = encodingFor(rnet, 5);
    const pre = preprocessConfig([28, 28, 1], {
      mean: 0.286,
      std: 0.353,
      size: 40,
      resize: 'bilinear',
      channels: 3,
    });
    const model = buildPlainModel(rnet, renc, { inputPreprocess: pre, seed: 1 });
    warmBatchNorm(model, images);
    const out = join(dir, 'resnet');
    const meta = plainModelMetadata(rnet, renc, { preprocess: pre, classNames: ds.classNames });
    await exportPlainModel(model, out, meta);
    const loaded = await loadExportedModel(out);
    expect(loaded.metadata?.preprocess).toEqual(pre);
    const [want, got] = tf.tidy(() => [
      tf.softmax(model.predict(images) as tf.Tensor),
      loaded.model.predict(images) as tf.Tensor,
    ]);
    expect(maxAbsDiff(got!.dataSync(), want!.dataSync())).toBeLessThan(1e-5);
    tf.dispose([want!, got!]);
    loaded.model.dispose();
    model.dispose();
  });

  test('re-export over an existing export replaces it; missing or truncated files are clear errors', async () => {
    const out = join(dir, 'again');
    const model = buildPlainModel(net, enc, { inputPreprocess: PRE(), seed: 9 });
    const meta = plainModelMetadata(net, enc, { preprocess: PRE(), classNames: ds.classNames });
    await exportPlainModel(model, out, meta);
    await exportPlainModel(model, out, { ...meta, test_top1: 0.5 });
    expect((await readdir(out)).sort()).toEqual([WEIGHTS_FILE, MODEL_JSON].sort());
    const loaded = await loadExportedModel(out);
    expect(loaded.metadata?.test_top1).toBe(0.5);
    loaded.model.dispose();
    model.dispose();

    await expect(loadExportedModel(join(dir, 'nowhere'))).rejects.toThrow(/nowhere.*model\.json/);
    const bin = await readFile(join(out, WEIGHTS_FILE));
    await writeFile(join(out, WEIGHTS_FILE), bin.subarray(0, bin.length >> 1));
    await expect(loadExportedModel(out)).rejects.toThrow(/truncated/);
  });

  test('metadata refuses class names that do not match the network', () => {
    expect(() => plainModelMetadata(net, enc, { classNames: ['a', 'b'] })).toThrow(/classNames/);
  });
});
