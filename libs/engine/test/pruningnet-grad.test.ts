/**
 * Gradient correctness of the whole PruningNet:
 * - the hand-written backward pass against tfjs autodiff of the same forward, per layer,
 *   on tiny MobileNet V1 / V2 and ResNet-50 (small and imagenet presets: strided
 *   projections, max pool, relu after the add);
 * - the generators' analytic gradients (the code path training uses, read back as the
 *   momentum buffer of a step with lr 0 and momentum 0) against central finite differences
 *   of the loss, as directional derivatives per parameter group and for the single
 *   parameters with the largest gradient.
 */
import {
  buildNetwork,
  type Encoding,
  fullEncoding,
  type Network,
  uniformEncoding,
} from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/select.js';
import { forwardTrain } from '../src/pruningnet/forward.js';
import { CatchUp } from '../src/pruningnet/generator.js';
import { createPruningNet, type PruningNet, sampleEncoding } from '../src/pruningnet/pruningnet.js';
import {
  allLayers,
  GenScratch,
  generateLayers,
  planCrops,
  updateLayers,
} from '../src/pruningnet/step.js';
import {
  cropTensors,
  LABEL_SMOOTHING,
  type ShardBatch,
  trainShard,
} from '../src/pruningnet/tfstep.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function batchFor(net: Network, n: number, seed: number): ShardBatch {
  const { inputSize: s, inputChannels: c, numClasses } = net.spec;
  const r = rng(seed);
  const images = new Float32Array(n * s * s * c).map(() => r() * 2 - 1);
  const labels = new Int32Array(n).map(() => Math.floor(r() * numClasses));
  return { images, labels, n, imageShape: [s, s, c] };
}

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/**
 * max |a - b| relative to max |b|, floored at `floor`: a layer whose gradient vanishes in
 * theory (e.g. a 1-channel conv before a non-affine BN is scale invariant) holds float noise.
 */
function relErr(a: Float32Array, b: Float32Array, floor: number): number {
  let num = 0;
  for (let i = 0; i < a.length; i++)
    num = Math.max(num, Math.abs((a[i] as number) - (b[i] as number)));
  return num / Math.max(maxAbs(b), floor);
}

describe('hand-written backward pass vs tfjs autodiff', () => {
  const cases: { name: string; net: Network; enc: (n: Network) => Encoding }[] = [
    {
      name: 'mobilenetv2 small, random encoding',
      net: buildNetwork({
        family: 'mobilenetv2',
        preset: 'small',
        width: 0.1,
        inputSize: 8,
        numClasses: 4,
      }),
      enc: (n) => sampleEncoding(n, 3, 7),
    },
    {
      name: 'mobilenetv1 small, uniform 0.5',
      net: buildNetwork({
        family: 'mobilenetv1',
        preset: 'small',
        width: 0.1,
        inputSize: 8,
        numClasses: 4,
      }),
      enc: (n) => uniformEncoding(n, 0.5),
    },
    {
      name: 'resnet50 small, full width',
      net: buildNetwork({
        family: 'resnet50',
        preset: 'small',
        width: 0.1,
        inputSize: 8,
        numClasses: 4,
      }),
      enc: (n) => fullEncoding(n),
    },
    {
      name: 'resnet50 imagenet preset (7x7/2 stem, max pool, strided projections), random',
      net: buildNetwork({
        family: 'resnet50',
        preset: 'imagenet',
        width: 0.1,
        inputSize: 32,
        numClasses: 4,
        lastStageFull: false,
      }),
      enc: (n) => sampleEncoding(n, 5, 1),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const pnet = createPruningNet(c.net, { seed: 11 });
      const enc = c.enc(c.net);
      const { layout } = pnet;
      const plan = planCrops(layout, enc);
      const arena = new Float32Array(layout.totalRows);
      generateLayers(
        layout,
        pnet.state,
        enc,
        plan,
        new GenScratch(layout),
        arena,
        allLayers(layout),
      );
      const batch = batchFor(c.net, 6, 1);
      const gManual = new Float32Array(layout.gradArenaSize);
      const gAuto = new Float32Array(layout.gradArenaSize);
      const small = pnet.state.params.small;
      const before = tf.memory().numTensors;
      const rm = trainShard(layout, pnet.index, plan, arena, small, batch, gManual, 'manual');
      const ra = trainShard(layout, pnet.index, plan, arena, small, batch, gAuto, 'autodiff');
      expect(tf.memory().numTensors).toBe(before);
      expect(Math.abs(rm.loss - ra.loss)).toBeLessThan(1e-5 * Math.max(1, Math.abs(ra.loss)));
      expect(rm.correct).toBe(ra.correct);
      let checked = 0;
      const floor = 1e-3 * maxAbs(gAuto);
      expect(floor).toBeGreaterThan(0);
      plan.forEach((p, i) => {
        const g = layout.gens[i];
        const fc = layout.fcs.find((f) => f.index === i);
        const off = g ? g.rowOff : (fc?.gradOff as number);
        const a = gManual.subarray(off, off + p.size);
        const b = gAuto.subarray(off, off + p.size);
        const err = relErr(a, b, floor);
        if (err > 2e-3) throw new Error(`${c.net.layers[i]?.name}: relative error ${err}`);
        checked++;
      });
      expect(checked).toBe(c.net.layers.length);
    });
  }
});

/** Loss of a candidate through forwardTrain and tfjs' own label-smoothed cross-entropy. */
function lossAt(pnet: PruningNet, enc: Encoding, batch: ShardBatch): number {
  const { layout } = pnet;
  const plan = planCrops(layout, enc);
  const arena = new Float32Array(layout.totalRows);
  generateLayers(layout, pnet.state, enc, plan, new GenScratch(layout), arena, allLayers(layout));
  return tf.tidy(() => {
    const { ws, biases } = cropTensors(layout, plan, arena, pnet.state.params.small);
    const [h, w, c] = batch.imageShape;
    const x = tf.tensor4d(batch.images, [batch.n, h, w, c]);
    const logits = forwardTrain(pnet.net, pnet.index, x, ws, biases);
    const onehot = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), pnet.net.spec.numClasses);
    return tf.losses
      .softmaxCrossEntropy(onehot, logits, undefined, LABEL_SMOOTHING)
      .dataSync()[0] as number;
  });
}

describe('generator gradients vs finite differences', () => {
  // Width 0.25 at 16x16 with 16 images: narrow nets with 1-2 channel BNs at 8x8 make the
  // float32 loss too rough for finite differences (measured), this one converges to <1%.
  it('MobileNetV2 PruningNet (width 0.25, 16x16): generator groups of four layers and the classifier', () => {
    const net = buildNetwork({
      family: 'mobilenetv2',
      preset: 'small',
      width: 0.25,
      inputSize: 16,
      numClasses: 4,
    });
    const pnet = createPruningNet(net, { seed: 5 });
    const enc = uniformEncoding(net, 0.7);
    const batch = batchFor(net, 16, 3);
    const { layout } = pnet;

    // Analytic gradient through the training code path: lr 0, momentum 0 => momentum = grad.
    const probe = createPruningNet(net, { seed: 5 });
    const plan = planCrops(layout, enc);
    const scratch = new GenScratch(layout);
    const arena = new Float32Array(layout.totalRows);
    const grads = new Float32Array(layout.gradArenaSize);
    const optim = { momentum: 0, lrAt: () => 0 };
    generateLayers(layout, probe.state, enc, plan, scratch, arena, allLayers(layout), {
      t: 0,
      cu: new CatchUp(optim),
    });
    trainShard(layout, probe.index, plan, arena, probe.state.params.small, batch, grads);
    updateLayers(
      layout,
      probe.state,
      plan,
      scratch,
      [grads],
      [1],
      { t: 0, lr: 0, momentum: 0 },
      allLayers(layout),
    );
    const gW2 = probe.state.momentum.w2;
    const gB2 = probe.state.momentum.b2;
    const gSmall = probe.state.momentum.small;
    const params = pnet.state.params;

    /** Central difference of the loss along `dir` (scaled to unit max) over `idx` of `arr`. */
    const fd = (arr: Float32Array, idx: number[], dir: number[], eps: number): number => {
      const orig = idx.map((i) => arr[i] as number);
      const set = (sign: number) =>
        idx.forEach((i, k) => {
          arr[i] = (orig[k] as number) + sign * eps * (dir[k] as number);
        });
      set(1);
      const up = lossAt(pnet, enc, batch);
      set(-1);
      const down = lossAt(pnet, enc, batch);
      set(0);
      return (up - down) / (2 * eps);
    };
    const check = (name: string, arr: Float32Array, grad: Float32Array, idx: number[]) => {
      // Along the gradient itself (largest signal over the float32 noise floor).
      let gmax = 0;
      for (const i of idx) gmax = Math.max(gmax, Math.abs(grad[i] as number));
      expect(gmax).toBeGreaterThan(0);
      const dir = idx.map((i) => (grad[i] as number) / gmax);
      const analytic = idx.reduce((s, i, k) => s + (grad[i] as number) * (dir[k] as number), 0);
      const numeric = fd(arr, idx, dir, 3e-4 / Math.sqrt(idx.length));
      const err = Math.abs(analytic - numeric) / Math.abs(analytic);
      if (!(err < 0.05)) throw new Error(`${name}: analytic ${analytic}, numeric ${numeric}`);
    };

    for (const name of ['stem.conv', 'block3.dw', 'block3.project', 'head.conv']) {
      const gen = layout.gens.find((g) => g?.layer.name === name);
      const p = gen ? plan[gen.index] : undefined;
      if (!gen || !p) throw new Error(`no layer ${name}`);
      const cout = gen.kind === 'depthwise' ? 1 : p.cout;
      const rows: number[] = [];
      for (let ci = 0; ci < p.cin; ci++)
        for (let j = 0; j < cout * gen.kk; j++)
          rows.push(gen.rowOff + ci * gen.coutMax * gen.kk + j);
      check(
        `${name} w2`,
        params.w2,
        gW2,
        rows.flatMap((row) =>
          Array.from(
            { length: gen.hidden },
            (_, j) => gen.w2Off + (row - gen.rowOff) * gen.hidden + j,
          ),
        ),
      );
      check(`${name} b2`, params.b2, gB2, rows);
      const w1 = Array.from({ length: gen.codeLen * gen.hidden }, (_, k) => gen.w1Off + k);
      check(`${name} w1`, params.small, gSmall, w1);
      check(
        `${name} b1`,
        params.small,
        gSmall,
        Array.from({ length: gen.hidden }, (_, k) => gen.b1Off + k),
      );
      // Rows outside the crop get no gradient.
      const outside = p.cin < gen.cinMax ? gen.rowOff + p.cin * gen.coutMax * gen.kk : -1;
      if (outside >= 0) expect(gB2[outside]).toBe(0);
    }
    const fc = layout.fcs[0];
    if (!fc) throw new Error('no classifier');
    check(
      'classifier',
      params.small,
      gSmall,
      Array.from({ length: fc.cinMax * fc.cout + fc.cout }, (_, k) => fc.wOff + k),
    );
  });
});
