/**
 * The plain networks' hand-written training pass (affine batch norm, moving statistics)
 * against tfjs autodiff of the stock layers model: same gradients for every trainable
 * variable, same moving statistics, on MobileNetV2 and ResNet-50 graphs (identity and
 * projection shortcuts, max pooling, linear bottlenecks).
 */
import { buildNetwork, type Network, SCALE_COUNT, uniformEncoding } from '@metaprune/core';
import { preprocessConfig } from '@metaprune/data';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import {
  buildPlainModel,
  PlainGradients,
  type StepBatch,
  useFastBatchNorm,
} from '../src/plain/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor: number): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / Math.max(maxAbs(b), floor);
}

/** Non-trivial BN affine parameters (gamma around 1, beta around 0), the same for a seed. */
function perturbBatchNorm(model: tf.LayersModel, seed: number): void {
  let k = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    tf.tidy(() => {
      const [gamma, , mean, variance] = layer.getWeights() as tf.Tensor[];
      const c = gamma!.shape[0]!;
      layer.setWeights([
        tf.add(tf.mul(tf.randomUniform([c], -1, 1, 'float32', ++k), 0.5), 1),
        tf.mul(tf.randomUniform([c], -1, 1, 'float32', ++k), 0.3),
        mean!,
        variance!,
      ]);
    });
  }
}

const nets: [string, () => Network][] = [
  [
    'mobilenetv2',
    () =>
      buildNetwork({
        family: 'mobilenetv2',
        preset: 'small',
        width: 0.25,
        inputSize: 12,
        inputChannels: 1,
        numClasses: 4,
      }),
  ],
  [
    'resnet50',
    () =>
      buildNetwork({
        family: 'resnet50',
        preset: 'small',
        width: 0.125,
        inputSize: 12,
        inputChannels: 1,
        numClasses: 4,
      }),
  ],
];

describe('PlainGradients: manual pass vs autodiff', () => {
  it.each(nets)('%s: gradients and moving statistics agree', (_, make) => {
    const net = make();
    // Random images and labels: every channel has a healthy batch variance (near-constant
    // channels make batch norm's gradient ill-conditioned in float32).
    const n = 16;
    const size = net.spec.inputSize;
    const r = rng(7);
    const batch: StepBatch = {
      images: new Float32Array(n * size * size).map(() => r()),
      labels: new Int32Array(n).map(() => Math.floor(r() * 4)),
      size: n,
      shape: [n, size, size, 1],
    };
    const pre = preprocessConfig([size, size, 1], {
      stats: { mean: [0.5], std: [0.29] },
      size: net.spec.inputSize,
      channels: 1,
    });
    // Full width, and a mixed encoding (every gene a different scale in turn).
    const mixed = net.genes.map((_, i) => (i * 7 + 3) % SCALE_COUNT);
    for (const enc of [uniformEncoding(net, 1), mixed]) {
      const make2 = () => {
        const m = buildPlainModel(net, enc, { inputPreprocess: pre, seed: 5 });
        perturbBatchNorm(m, 11);
        return m;
      };
      const mManual = make2();
      const mAuto = make2();
      const manual = new PlainGradients(mManual, net, 0.1, 'manual');
      const auto = new PlainGradients(mAuto, net, 0.1, 'autodiff');
      // The tape differentiates the layers with the engine's BN kernel (fast-bn.ts: its own
      // affine gradient from matmuls). With the stock layer's float32 tf.moments instead,
      // these randomly initialised deep nets' early-layer gradients differ by ~1% (float
      // noise amplified; finite differences agree with neither). The fused kernels
      // themselves are checked against tf ops in kernels.test.ts.
      const fastBn = useFastBatchNorm(mAuto);
      expect(manual.mode).toBe('manual');
      const before = tf.memory().numTensors;
      const [a, b] = tf.tidy(() => {
        const ra = manual.compute(batch);
        const rb = auto.compute(batch);
        const names = (vars: readonly tf.Variable[]) => vars.map((v) => v.name);
        return [
          {
            loss: ra.loss,
            correct: ra.correct,
            g: names(manual.variables).map((n) => ra.grads[n]!.dataSync()),
          },
          {
            loss: rb.loss,
            correct: rb.correct,
            g: names(auto.variables).map((n) => rb.grads[n]!.dataSync()),
          },
        ];
      });
      // Only the moving statistics changed (written in place): nothing leaked.
      expect(tf.memory().numTensors).toBe(before);
      expect(a.loss).toBeCloseTo(b.loss, 4);
      expect(a.correct).toBe(b.correct);
      expect(a.g).toHaveLength(b.g.length);
      // Relative to the largest gradient of the layer, floored at 1e-3 of the largest of all:
      // some gradients vanish in theory (a linear projection's beta before the next BN).
      const floor = 1e-3 * Math.max(...b.g.map(maxAbs));
      expect(floor).toBeGreaterThan(0);
      a.g.forEach((ga, i) => {
        const name = mManual.trainableWeights[i]!.originalName;
        expect(relErr(ga, b.g[i]!, floor), name).toBeLessThan(2e-3);
      });
      const stats = (m: tf.LayersModel) =>
        m.nonTrainableWeights
          .filter((w) => /moving_(mean|variance)$/.test(w.originalName))
          .map((w) => w.read().dataSync());
      const sa = stats(mManual);
      const sb = stats(mAuto);
      expect(sa.length).toBeGreaterThan(0);
      sa.forEach((s, i) => {
        expect(relErr(s, sb[i]!, 1e-6)).toBeLessThan(1e-4);
      });
      // The moving statistics moved away from their initial values (variance 1).
      expect(Math.max(...Array.from(sa[1]!, (v) => Math.abs(v - 1)))).toBeGreaterThan(1e-3);
      fastBn.restore();
      mManual.dispose();
      mAuto.dispose();
    }
  });

  it('falls back to autodiff for a batch-norm epsilon the hand-written pass does not use', () => {
    const net = nets[0]![1]();
    const model = buildPlainModel(net, uniformEncoding(net, 1), { bnEpsilon: 1e-3 });
    expect(new PlainGradients(model, net, 0.1, 'manual').mode).toBe('autodiff');
    model.dispose();
  });
});
