/**
 * Plain pruned networks as tfjs LayersModels: parameter counts against core's analytic
 * counts, output shapes, initialisation from given weights, the built-in input stage
 * against @metaprune/data's preprocessing, and the fast training-mode batch norm.
 */
import {
  buildNetwork,
  countCost,
  type Encoding,
  fullEncoding,
  type Network,
  uniformEncoding,
} from '@metaprune/core';
import { ImagePreprocessor, type PreprocessConfig, preprocessConfig } from '@metaprune/data';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import {
  buildPlainModel,
  INPUT_NORM_LAYER,
  type PlainLayerWeights,
  PlainModelError,
  plainParamCounts,
  plainWeightsByLayer,
  useFastBatchNorm,
} from '../src/plain/index.js';

beforeAll(async () => {
  await initBackend();
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(0);
});

/** A deterministic pseudo-random encoding. */
function randomEncoding(net: Network, seed: number): Encoding {
  let s = seed >>> 0;
  return net.genes.map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % 31;
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const FASHION_PRE: PreprocessConfig = preprocessConfig([28, 28, 1], {
  mean: 0.286,
  std: 0.353,
  size: 32,
});

describe('parameter counts and shapes', () => {
  // Rule: trainable params (kernels, BN gamma + beta, classifier bias) == countCost().params;
  // non-trainable = BN moving mean + variance (2 per BN channel) + the frozen input stage.
  const cases: [string, Network, Encoding[]][] = [
    (() => {
      const net = buildNetwork({
        family: 'mobilenetv2',
        preset: 'small',
        width: 0.5,
        inputChannels: 1,
      });
      return [
        'mobilenetv2/small/0.5',
        net,
        [
          uniformEncoding(net, 0.5),
          fullEncoding(net),
          randomEncoding(net, 7),
          randomEncoding(net, 99),
        ],
      ] as [string, Network, Encoding[]];
    })(),
    (() => {
      const net = buildNetwork({ family: 'mobilenetv1', preset: 'small', inputChannels: 1 });
      return [
        'mobilenetv1/small/1',
        net,
        [uniformEncoding(net, 0.25), randomEncoding(net, 3), randomEncoding(net, 11)],
      ] as [string, Network, Encoding[]];
    })(),
    (() => {
      const net = buildNetwork({
        family: 'resnet50',
        preset: 'small',
        width: 0.5,
        inputChannels: 1,
      });
      return ['resnet50/small/0.5', net, [uniformEncoding(net, 0.1), randomEncoding(net, 5)]] as [
        string,
        Network,
        Encoding[],
      ];
    })(),
  ];
  for (const [name, net, encodings] of cases) {
    test(name, () => {
      for (const enc of encodings) {
        const model = buildPlainModel(net, enc, { inputPreprocess: FASHION_PRE });
        const counts = plainParamCounts(model);
        expect(counts.trainable).toBe(countCost(net, enc).params);
        expect(counts.preprocessing).toBe(1 * 1 + 1); // 1x1 kernel (1 -> 1 channel) + bias
        // BN moving statistics: as many as BN gamma + beta.
        const bnAffine = model.layers
          .filter((l) => l.getClassName() === 'BatchNormalization')
          .reduce((n, l) => n + (l.trainableWeights[0]?.shape[0] ?? 0) * 2, 0);
        expect(counts.bnMovingStats).toBe(bnAffine);
        expect(counts.total).toBe(counts.trainable + counts.bnMovingStats + counts.preprocessing);
        expect(model.inputs[0]!.shape).toEqual([null, 28, 28, 1]);
        expect(model.outputs[0]!.shape).toEqual([null, net.spec.numClasses]);
        model.dispose();
      }
    });
  }

  test('predicts [batch, numClasses] on every family', () => {
    for (const family of ['mobilenetv1', 'mobilenetv2', 'resnet50'] as const) {
      const net = buildNetwork({
        family,
        preset: 'small',
        width: 0.25,
        inputChannels: 1,
        numClasses: 7,
      });
      const model = buildPlainModel(net, uniformEncoding(net, 0.25), {
        inputPreprocess: FASHION_PRE,
      });
      const y = tf.tidy(
        () => model.predict(tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 1)) as tf.Tensor,
      );
      expect(y.shape).toEqual([3, 7]);
      expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
      y.dispose();
      model.dispose();
    }
  });

  test('ImageNet-style ResNet (7x7/2 stem, 3x3/2 max pool, 3 channels) builds and predicts', () => {
    const net = buildNetwork({
      family: 'resnet50',
      preset: 'imagenet',
      width: 0.25,
      inputSize: 64,
      numClasses: 5,
    });
    const model = buildPlainModel(net, uniformEncoding(net, 0.25));
    expect(model.layers.some((l) => l.getClassName() === 'MaxPooling2D')).toBe(true);
    expect(plainParamCounts(model).trainable).toBe(
      countCost(net, uniformEncoding(net, 0.25)).params,
    );
    const y = tf.tidy(() => model.predict(tf.randomNormal([2, 64, 64, 3])) as tf.Tensor);
    expect(y.shape).toEqual([2, 5]);
    y.dispose();
    model.dispose();
  });
});

describe('initialisation', () => {
  const net = buildNetwork({
    family: 'mobilenetv2',
    preset: 'small',
    width: 0.25,
    inputChannels: 1,
  });
  const enc = randomEncoding(net, 21);

  test('scratch initialisation is seeded', () => {
    const a = buildPlainModel(net, enc, { seed: 4 });
    const b = buildPlainModel(net, enc, { seed: 4 });
    const c = buildPlainModel(net, enc, { seed: 5 });
    const w = (m: tf.LayersModel) => m.getLayer('block3.expand').getWeights()[0]!.dataSync();
    expect(maxAbsDiff(w(a), w(b))).toBe(0);
    expect(maxAbsDiff(w(a), w(c))).toBeGreaterThan(0);
    // He normal, fan in: std ~ sqrt(2 / cin) for a 1x1 conv.
    const k = a.getLayer('block3.expand').getWeights()[0]!;
    const cin = k.shape[2]!;
    const std = Math.sqrt(Array.from(k.dataSync()).reduce((s, v) => s + v * v, 0) / k.size);
    expect(std).toBeGreaterThan(0.6 * Math.sqrt(2 / cin));
    expect(std).toBeLessThan(1.2 * Math.sqrt(2 / cin));
    for (const m of [a, b, c]) m.dispose();
  });

  test('given weights (PruningNet layout, by layer order) reproduce a model exactly', () => {
    const source = buildPlainModel(net, enc, { seed: 1 });
    // Give every BN distinct statistics and affine parameters.
    let salt = 0;
    for (const layer of source.layers) {
      if (layer.getClassName() !== 'BatchNormalization') continue;
      const c = layer.getWeights()[0]!.shape[0]!;
      salt++;
      tf.tidy(() =>
        layer.setWeights([
          tf.randomUniform([c], 0.5, 1.5, 'float32', salt),
          tf.randomUniform([c], -0.2, 0.2, 'float32', salt + 100),
          tf.randomUniform([c], -0.3, 0.3, 'float32', salt + 200),
          tf.randomUniform([c], 0.5, 2, 'float32', salt + 300),
        ]),
      );
    }
    // Mix of Float32Arrays and tensors, in net.layers order.
    const perLayer: PlainLayerWeights[] = net.layers.map((l, i) => {
      const main = source.getLayer(l.name).getWeights();
      const w: PlainLayerWeights = {
        weight: i % 2 === 0 ? (main[0]!.dataSync() as Float32Array) : main[0]!,
      };
      if (l.kind === 'fc') w.bias = main[1]!;
      if (l.bn) {
        const [gamma, beta, mean, variance] = source.getLayer(`${l.name}.bn`).getWeights();
        Object.assign(w, { gamma, beta, mean, variance });
      }
      return w;
    });
    const copy = buildPlainModel(net, enc, { init: plainWeightsByLayer(net, perLayer) });
    const x = tf.randomUniform([4, 32, 32, 1], 0, 1, 'float32', 9);
    const [ya, yb] = tf.tidy(() => [source.predict(x) as tf.Tensor, copy.predict(x) as tf.Tensor]);
    expect(maxAbsDiff(ya!.dataSync(), yb!.dataSync())).toBeLessThan(1e-6);

    // The PruningNet's BN is not affine: without gamma / beta they are 1 / 0.
    const noAffine = new Map(
      net.layers.map((l, i) => {
        const { gamma: _g, beta: _b, ...rest } = perLayer[i]!;
        return [l.name, rest];
      }),
    );
    const plain = buildPlainModel(net, enc, { init: noAffine });
    const [gamma, beta, mean] = plain.getLayer('block2.dw.bn').getWeights();
    expect(Array.from(gamma!.dataSync()).every((v) => v === 1)).toBe(true);
    expect(Array.from(beta!.dataSync()).every((v) => v === 0)).toBe(true);
    expect(
      maxAbsDiff(
        mean!.dataSync(),
        (
          perLayer[net.layers.findIndex((l) => l.name === 'block2.dw')]!.mean as tf.Tensor
        ).dataSync(),
      ),
    ).toBe(0);

    tf.dispose([x, ya!, yb!]);
    for (const m of [source, copy, plain]) m.dispose();
  });

  test('wrong or missing weights name the layer', () => {
    const good = new Map<string, PlainLayerWeights>();
    const ref = buildPlainModel(net, enc);
    for (const l of net.layers) {
      const ws = ref.getLayer(l.name).getWeights();
      good.set(l.name, {
        weight: ws[0]!.dataSync() as Float32Array,
        ...(l.kind === 'fc' ? { bias: ws[1]!.dataSync() as Float32Array } : {}),
      });
    }
    ref.dispose();
    const before = tf.memory().numTensors;
    const missing = new Map(good);
    missing.delete('block4.project');
    expect(() => buildPlainModel(net, enc, { init: missing })).toThrow(/block4\.project/);
    const wrong = new Map(good);
    wrong.set('block2.dw', { weight: new Float32Array(5) });
    expect(() => buildPlainModel(net, enc, { init: wrong })).toThrow(PlainModelError);
    expect(() => buildPlainModel(net, enc, { init: wrong })).toThrow(
      /block2\.dw\.weight: 5 values/,
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(() => buildPlainModel(net, enc.slice(1))).toThrow(/genes/);
  });
});

describe('input stage matches @metaprune/data preprocessing', () => {
  /** Runs a model's input stage (up to the frozen normalisation) on uint8 images. */
  function inputStage(pre: PreprocessConfig, images: Uint8Array, n: number): Float32Array {
    const [oh, ow, oc] = pre.outputShape;
    const net = buildNetwork({
      family: 'mobilenetv1',
      preset: 'small',
      width: 0.1,
      inputSize: oh,
      inputChannels: oc,
    });
    expect(ow).toBe(oh);
    const model = buildPlainModel(net, uniformEncoding(net, 0.1), { inputPreprocess: pre });
    // Shares the model's layers: not disposed on its own (that would free shared weights).
    const stage = tf.model({
      inputs: model.inputs,
      outputs: model.getLayer(INPUT_NORM_LAYER).output as tf.SymbolicTensor,
    });
    const out = tf.tidy(() => {
      const x = tf.div(tf.tensor4d(images, [n, ...pre.inputShape], 'float32'), 255);
      return (stage.predict(x) as tf.Tensor).dataSync() as Float32Array;
    });
    model.dispose();
    return out;
  }

  function reference(pre: PreprocessConfig, images: Uint8Array, n: number): Float32Array {
    const p = new ImagePreprocessor(pre);
    const out = new Float32Array(n * p.outputSize);
    const size = pre.inputShape[0] * pre.inputShape[1] * pre.inputShape[2];
    for (let i = 0; i < n; i++) p.fill(images, i * size, out, i * p.outputSize);
    return out;
  }

  function images(n: number, shape: readonly [number, number, number]): Uint8Array {
    const a = new Uint8Array(n * shape[0] * shape[1] * shape[2]);
    for (let i = 0; i < a.length; i++) a[i] = (i * 37 + ((i * i) >> 3)) & 255;
    return a;
  }

  const cases: [string, PreprocessConfig][] = [
    ['pad 28 -> 32', FASHION_PRE],
    [
      'pad 28 -> 33 (odd) + replicate to 3 channels',
      preprocessConfig([28, 28, 1], { mean: 0.2, std: 0.4, size: 33, channels: 3 }),
    ],
    ['bilinear 28 -> 20 (down)', preprocessConfig([28, 28, 1], { mean: 0.5, std: 0.25, size: 20 })],
    [
      'bilinear 28 -> 40 (up)',
      preprocessConfig([28, 28, 1], { mean: 0.5, std: 0.25, size: 40, resize: 'bilinear' }),
    ],
    [
      '3-channel per-channel stats, no resize',
      preprocessConfig([32, 32, 3], { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] }),
    ],
  ];
  for (const [name, pre] of cases) {
    test(name, () => {
      const n = 3;
      const imgs = images(n, pre.inputShape);
      const got = inputStage(pre, imgs, n);
      const want = reference(pre, imgs, n);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    });
  }

  test('a preprocessing that does not fit the network is refused', () => {
    const net = buildNetwork({
      family: 'mobilenetv1',
      preset: 'small',
      width: 0.25,
      inputChannels: 1,
    });
    const pre = preprocessConfig([28, 28, 1], { size: 30 });
    expect(() => buildPlainModel(net, uniformEncoding(net, 0.5), { inputPreprocess: pre })).toThrow(
      /outputShape/,
    );
  });
});

describe('fast training-mode batch norm', () => {
  test('one BN layer: output and gradients (x, gamma, beta) match float64 to 1e-5', () => {
    const C = 6;
    const R = 4 * 9 * 9;
    const inp = tf.input({ shape: [9, 9, C] });
    const bn = tf.layers.batchNormalization({ epsilon: 1e-5, momentum: 0.9 });
    const model = tf.model({ inputs: inp, outputs: bn.apply(inp) as tf.SymbolicTensor });
    tf.tidy(() =>
      bn.setWeights([
        tf.randomUniform([C], 0.5, 1.5, 'float32', 1),
        tf.randomNormal([C], 0, 1, 'float32', 2),
        tf.zeros([C]),
        tf.ones([C]),
      ]),
    );
    const x = tf.tidy(() =>
      tf.add(tf.mul(tf.randomNormal([4, 9, 9, C], 0, 1, 'float32', 3), 3), 1),
    );
    const w = tf.randomNormal([4, 9, 9, C], 0, 1, 'float32', 4);
    const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    const run = () =>
      tf.tidy(() => {
        const f = (xx: tf.Tensor) =>
          tf.sum(tf.mul(model.apply(xx, { training: true }) as tf.Tensor, w)) as tf.Scalar;
        const { grads } = tf.variableGrads(() => f(x), vars);
        const gx = tf.grad(f)(x);
        const z = model.apply(x, { training: true }) as tf.Tensor;
        return [z, gx, grads[vars[0]!.name]!, grads[vars[1]!.name]!].map((t) =>
          Array.from(t.dataSync()),
        );
      });
    const xv = Array.from(x.dataSync());
    const wv = Array.from(w.dataSync());
    const g = Array.from(vars[0]!.dataSync());
    const b = Array.from(vars[1]!.dataSync());
    const mean = new Array<number>(C).fill(0);
    const vr = new Array<number>(C).fill(0);
    xv.forEach((v, i) => {
      mean[i % C]! += v / R;
    });
    xv.forEach((v, i) => {
      vr[i % C]! += (v - mean[i % C]!) ** 2 / R;
    });
    const yv = xv.map((v, i) => (v - mean[i % C]!) / Math.sqrt(vr[i % C]! + 1e-5));
    const dg = new Array<number>(C).fill(0);
    const db = new Array<number>(C).fill(0);
    yv.forEach((y, i) => {
      dg[i % C]! += wv[i]! * y;
      db[i % C]! += wv[i]!;
    });
    const z = yv.map((y, i) => g[i % C]! * y + b[i % C]!);
    const dx = yv.map((y, i) => {
      const c = i % C;
      return (g[c]! / Math.sqrt(vr[c]! + 1e-5)) * (wv[i]! - db[c]! / R - (y * dg[c]!) / R);
    });
    const rel = (got: number[], want: number[]) =>
      maxAbsDiff(got, want) / Math.max(...want.map(Math.abs));
    const fast = useFastBatchNorm(model);
    const got = run();
    const movingMean = Array.from(bn.getWeights()[2]!.dataSync());
    fast.restore();
    expect(rel(got[0]!, z)).toBeLessThan(1e-5);
    expect(rel(got[1]!, dx)).toBeLessThan(1e-5);
    expect(rel(got[2]!, dg)).toBeLessThan(1e-5);
    expect(rel(got[3]!, db)).toBeLessThan(1e-5);
    // Moving statistics move towards the batch's (momentum 0.9, updated by each of the
    // 3 training-mode calls of `run`: mean_k = 0.1 * sum 0.9^j batch).
    const expected = mean.map((m) => m * (1 - 0.9 ** 3));
    expect(maxAbsDiff(movingMean, expected)).toBeLessThan(1e-4);
    // The stock path is back after restore().
    expect(Object.hasOwn(bn, 'call')).toBe(false);
    tf.dispose([x, w]);
    model.dispose();
  });

  test('whole model: same training-mode output as the stock layers, inference untouched', () => {
    const net = buildNetwork({
      family: 'mobilenetv2',
      preset: 'small',
      width: 0.25,
      inputChannels: 1,
    });
    const model = buildPlainModel(net, randomEncoding(net, 8), {
      inputPreprocess: FASHION_PRE,
      seed: 2,
    });
    const x = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 5);
    const stats = () =>
      model
        .getLayer('block5.dw.bn')
        .getWeights()
        .map((t) => Array.from(t.dataSync()));
    const w0 = model.getWeights().map((t) => t.clone());
    const infer0 = tf.tidy(() => Array.from((model.predict(x) as tf.Tensor).dataSync()));
    const stock = tf.tidy(() =>
      Array.from((model.apply(x, { training: true }) as tf.Tensor).dataSync()),
    );
    const sStock = stats();
    model.setWeights(w0); // undo the moving-average updates
    const fast = useFastBatchNorm(model);
    const fastOut = tf.tidy(() =>
      Array.from((model.apply(x, { training: true }) as tf.Tensor).dataSync()),
    );
    const sFast = stats();
    model.setWeights(w0);
    const infer1 = tf.tidy(() => Array.from((model.predict(x) as tf.Tensor).dataSync()));
    fast.restore();
    const scale = Math.max(...stock.map(Math.abs));
    expect(maxAbsDiff(fastOut, stock) / scale).toBeLessThan(1e-3);
    expect(maxAbsDiff(sFast[2]!, sStock[2]!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(sFast[3]!, sStock[3]!) / Math.max(...sStock[3]!)).toBeLessThan(1e-3);
    // Inference does not go through the swapped path.
    expect(maxAbsDiff(infer0, infer1)).toBe(0);
    tf.dispose(w0);
    x.dispose();
    model.dispose();
  });
});
