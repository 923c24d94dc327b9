/**
 * Every gradient the networks use, against central finite differences (float32 forward,
 * float64 accumulation of the probe loss), on every backend present; on wasm also against
 * the cpu backend's analytic gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchNormTrain, initBackend } from '../src/index.js';

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

function normals(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  name: string;
  shapes: number[][];
  f: (...xs: tf.Tensor[]) => tf.Tensor;
  /** Inputs that are data, not differentiated (e.g. labels). */
  constants?: number[];
  gen?: (i: number, n: number) => Float32Array;
  /** Finite-difference step (default 0.1: exact for the linear ops). */
  eps?: number;
  /** Bound on max|analytic - fd| / max|fd| (default 1e-4; measured ~1e-6 on linear ops). */
  tol?: number;
  /** Skip the finite-difference check (kinks): compared across backends only. */
  noFd?: boolean;
}

const T4 = (t: tf.Tensor) => t as tf.Tensor4D;

/** relu6 inputs away from the kinks at 0 and 6, so central differences are exact. */
function awayFromKinks(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = -2 + 10 * r();
    out[i] = Math.abs(v) < 0.1 || Math.abs(v - 6) < 0.1 ? v + 0.25 : v;
  }
  return out;
}

function oneHot(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) out[i * cols + Math.floor(r() * cols)] = 1;
  return out;
}

const CASES: Case[] = [
  {
    name: 'conv2d 1x1 s1 (Cin > Cout)',
    shapes: [
      [2, 5, 5, 7],
      [1, 1, 7, 3],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 1, 'same'),
  },
  {
    name: 'conv2d 1x1 s1 (Cin < Cout)',
    shapes: [
      [2, 4, 5, 3],
      [1, 1, 3, 6],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 1, 'same'),
  },
  {
    name: 'conv2d 1x1 s2',
    shapes: [
      [2, 7, 6, 4],
      [1, 1, 4, 5],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 2, 'same'),
  },
  {
    name: 'conv2d 3x3 s1 same',
    shapes: [
      [2, 6, 5, 3],
      [3, 3, 3, 4],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 1, 'same'),
  },
  {
    name: 'conv2d 3x3 s2 same',
    shapes: [
      [2, 7, 8, 3],
      [3, 3, 3, 5],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 2, 'same'),
  },
  {
    name: 'conv2d 3x3 s2 valid',
    shapes: [
      [2, 8, 7, 2],
      [3, 3, 2, 3],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 2, 'valid'),
  },
  {
    name: 'conv2d 7x7 s2 same',
    shapes: [
      [1, 11, 12, 3],
      [7, 7, 3, 4],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 2, 'same'),
  },
  {
    name: 'conv2d 7x7 s2 valid',
    shapes: [
      [1, 12, 11, 2],
      [7, 7, 2, 3],
    ],
    f: (x, w) => tf.conv2d(T4(x), T4(w), 2, 'valid'),
  },
  {
    name: 'depthwise 3x3 s1 same',
    shapes: [
      [2, 6, 6, 5],
      [3, 3, 5, 1],
    ],
    f: (x, w) => tf.depthwiseConv2d(T4(x), T4(w), 1, 'same'),
  },
  {
    name: 'depthwise 3x3 s1 same, 19 channels',
    shapes: [
      [2, 5, 4, 19],
      [3, 3, 19, 1],
    ],
    f: (x, w) => tf.depthwiseConv2d(T4(x), T4(w), 1, 'same'),
  },
  {
    name: 'depthwise 3x3 s2 same (odd input)',
    shapes: [
      [2, 7, 8, 5],
      [3, 3, 5, 1],
    ],
    f: (x, w) => tf.depthwiseConv2d(T4(x), T4(w), 2, 'same'),
  },
  {
    name: 'depthwise 3x3 s2 same (even input)',
    shapes: [
      [2, 8, 8, 6],
      [3, 3, 6, 1],
    ],
    f: (x, w) => tf.depthwiseConv2d(T4(x), T4(w), 2, 'same'),
  },
  {
    name: 'depthwise 3x3 s2 valid',
    shapes: [
      [2, 8, 7, 4],
      [3, 3, 4, 1],
    ],
    f: (x, w) => tf.depthwiseConv2d(T4(x), T4(w), 2, 'valid'),
  },
  {
    name: 'depthwise 3x3 s1 multiplier 2',
    shapes: [
      [2, 5, 5, 3],
      [3, 3, 3, 2],
    ],
    f: (x, w) => tf.depthwiseConv2d(T4(x), T4(w), 1, 'same'),
  },
  {
    name: 'fused conv2d 3x3 s2 + bias',
    shapes: [[2, 6, 6, 3], [3, 3, 3, 4], [4]],
    f: (x, w, b) => tf.fused.conv2d({ x: T4(x), filter: T4(w), bias: b, strides: 2, pad: 'same' }),
  },
  {
    name: 'fused conv2d 1x1 s1 + bias',
    shapes: [[2, 4, 4, 6], [1, 1, 6, 5], [5]],
    f: (x, w, b) => tf.fused.conv2d({ x: T4(x), filter: T4(w), bias: b, strides: 1, pad: 'same' }),
  },
  {
    name: 'fused depthwise 3x3 s2 + bias',
    shapes: [[2, 7, 7, 4], [3, 3, 4, 1], [4]],
    f: (x, w, b) =>
      tf.fused.depthwiseConv2d({ x: T4(x), filter: T4(w), bias: b, strides: 2, pad: 'same' }),
  },
  {
    name: 'fused conv2d 3x3 s1 + bias + relu6 (unfused under tf.grad)',
    shapes: [[2, 5, 5, 3], [3, 3, 3, 4], [4]],
    f: (x, w, b) =>
      tf.fused.conv2d({
        x: T4(x),
        filter: T4(w),
        bias: b,
        strides: 1,
        pad: 'same',
        activation: 'relu6',
      }),
    noFd: true,
  },
  {
    name: 'fused depthwise 3x3 s1 + bias + relu6',
    shapes: [[2, 5, 5, 4], [3, 3, 4, 1], [4]],
    f: (x, w, b) =>
      tf.fused.depthwiseConv2d({
        x: T4(x),
        filter: T4(w),
        bias: b,
        strides: 1,
        pad: 'same',
        activation: 'relu6',
      }),
    noFd: true,
  },
  {
    name: 'relu6',
    shapes: [[3, 4, 5]],
    f: (x) => tf.relu6(x),
    gen: (_, n) => awayFromKinks(n, 7),
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'relu',
    shapes: [[3, 7]],
    f: (x) => tf.relu(x),
    gen: (_, n) => awayFromKinks(n, 8),
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'batch norm from ops (moments, rsqrt)',
    shapes: [[4, 3, 3, 5]],
    f: (x) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5)));
    },
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'batchNormTrain: y',
    shapes: [[4, 3, 3, 6]],
    f: (x) => batchNormTrain(x, 1e-5).y,
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'batchNormTrain: y, mean and variance together',
    shapes: [[6, 2, 2, 5]],
    f: (x) => {
      const { y, mean, variance } = batchNormTrain(tf.mul(x, 2), 1e-3);
      return tf.concat([tf.reshape(y, [-1]), tf.mul(mean, 3), tf.mul(variance, -2)]);
    },
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'batchNormTrain on [N, C]',
    shapes: [[9, 4]],
    f: (x) => batchNormTrain(x).y,
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'avgPool 2x2 s2',
    shapes: [[2, 6, 6, 3]],
    f: (x) => tf.avgPool(T4(x), 2, 2, 'valid'),
  },
  {
    name: 'global average pool (mean over H, W)',
    shapes: [[3, 4, 4, 5]],
    f: (x) => tf.mean(x, [1, 2]),
  },
  {
    name: 'matMul + bias',
    shapes: [[5, 7], [7, 3], [3]],
    f: (a, b, c) => tf.add(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D), c),
  },
  {
    name: 'matMul of a reshaped operand',
    shapes: [
      [4, 6],
      [2, 3, 5],
    ],
    f: (a, b) => tf.matMul(a as tf.Tensor2D, tf.reshape(b, [6, 5]) as tf.Tensor2D),
  },
  {
    name: 'softmax cross-entropy with label smoothing',
    shapes: [
      [6, 10],
      [6, 10],
    ],
    constants: [1],
    gen: (i, n) => (i === 1 ? oneHot(6, 10, 11) : normals(n, 12)),
    f: (logits, labels) => tf.losses.softmaxCrossEntropy(labels!, logits, undefined, 0.1),
    eps: 1e-2,
    tol: 1e-3,
  },
  {
    name: 'log-softmax',
    shapes: [[4, 10]],
    f: (x) => tf.logSoftmax(x),
    eps: 1e-2,
    tol: 1e-3,
  },
];

function inputsOf(c: Case): Float32Array[] {
  return c.shapes.map((s, i) => (c.gen ? c.gen(i, size(s)) : normals(size(s), 1000 + 17 * i)));
}

/** Probe loss: sum(f(xs) * r) accumulated in float64. */
function probeLoss(c: Case, vals: Float32Array[], r: Float32Array): number {
  return tf.tidy(() => {
    const out = c.f(...vals.map((v, i) => tf.tensor(v, c.shapes[i]))).dataSync();
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * r[i]!;
    return s;
  });
}

function analytic(c: Case, vals: Float32Array[], r: Float32Array): Float32Array[] {
  return tf.tidy(() => {
    const xs = vals.map((v, i) => tf.tensor(v, c.shapes[i]));
    const outShape = tf.tidy(() => c.f(...xs).shape);
    const rt = tf.tensor(r, outShape);
    const wrt = xs.map((_, i) => i).filter((i) => !c.constants?.includes(i));
    const g = tf.grads((...ys: tf.Tensor[]) => {
      const all = xs.slice();
      wrt.forEach((k, j) => {
        all[k] = ys[j]!;
      });
      return tf.sum(tf.mul(c.f(...all), rt));
    });
    const out: Float32Array[] = [];
    const gs = g(wrt.map((k) => xs[k]!));
    wrt.forEach((k, j) => {
      out[k] = gs[j]!.dataSync() as Float32Array;
    });
    return out;
  });
}

function outputSize(c: Case, vals: Float32Array[]): number {
  return tf.tidy(() => size(c.f(...vals.map((v, i) => tf.tensor(v, c.shapes[i]))).shape));
}

/** max |a - b| / max |b|. */
function relErr(a: Float32Array, b: ArrayLike<number>): number {
  let m = 0;
  let s = 1e-6;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return m / s;
}

function finiteDifferences(
  c: Case,
  vals: Float32Array[],
  r: Float32Array,
  k: number,
): Float64Array {
  const eps = c.eps ?? 0.1;
  const x = vals[k]!;
  const fd = new Float64Array(x.length);
  for (let j = 0; j < x.length; j++) {
    const v = x[j]!;
    const plus = vals.slice();
    const px = x.slice();
    px[j] = v + eps;
    plus[k] = px;
    const minus = vals.slice();
    const mx = x.slice();
    mx[j] = v - eps;
    minus[k] = mx;
    // The perturbation actually applied in float32.
    const h = (px[j]! - mx[j]!) / 2;
    fd[j] = (probeLoss(c, plus, r) - probeLoss(c, minus, r)) / (2 * h);
  }
  return fd;
}

const BACKENDS = ['wasm', 'cpu'] as const;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

describe.each(BACKENDS)('gradients on %s vs finite differences', (backend) => {
  beforeAll(async () => {
    await initBackend({ prefer: backend });
  });

  it.each(CASES.filter((c) => !c.noFd).map((c) => [c.name, c] as const))('%s', async (_, c) => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const vals = inputsOf(c);
    const r = normals(outputSize(c, vals), 99);
    const grads = analytic(c, vals, r);
    for (let k = 0; k < vals.length; k++) {
      if (c.constants?.includes(k)) continue;
      const fd = finiteDifferences(c, vals, r, k);
      const err = relErr(grads[k]!, fd);
      expect(err, `${c.name}: input ${k} on ${backend}`).toBeLessThan(c.tol ?? 1e-4);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('wasm analytic gradients vs the cpu backend', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const vals = inputsOf(c);
    await tf.setBackend('cpu');
    const r = normals(outputSize(c, vals), 99);
    const ref = analytic(c, vals, r);
    await tf.setBackend('wasm');
    const got = analytic(c, vals, r);
    for (let k = 0; k < vals.length; k++) {
      if (c.constants?.includes(k)) continue;
      expect(relErr(got[k]!, ref[k]!), `${c.name}: input ${k}`).toBeLessThan(1e-4);
    }
  });
});
