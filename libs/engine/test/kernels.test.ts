/**
 * The supplied wasm kernels on benchmark-like shapes against the cpu backend's native
 * kernels, memory hygiene, the matmul-cache trap, and batchNormTrain's forward values.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchNormTrain, batchNormTrainOps, initBackend, useSimdKernels } from '../src/index.js';
import { batchNormAffineGrad, scaleShift } from '../src/kernels/batchnorm.js';
import { asWasmBackend } from '../src/kernels/heap.js';
import { simdKernels } from '../src/kernels/simd.js';

function seeded(shape: number[], seed: number, offset = 0): tf.Tensor {
  // Generated on the cpu side of tfjs (same values on every backend).
  return tf.tidy(() => tf.add(tf.randomNormal(shape, 0, 1, 'float32', seed), offset));
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let s = 1e-6;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return m / s;
}

type Op = 'conv' | 'depthwise';
interface Shape {
  op: Op;
  x: [number, number, number, number];
  k: number;
  cout: number;
  stride: 1 | 2;
  pad: 'same' | 'valid';
}

const SHAPES: Shape[] = [
  { op: 'conv', x: [2, 16, 16, 16], k: 1, cout: 96, stride: 1, pad: 'same' },
  { op: 'conv', x: [2, 8, 8, 132], k: 1, cout: 22, stride: 1, pad: 'same' },
  { op: 'conv', x: [2, 4, 4, 224], k: 1, cout: 1280, stride: 1, pad: 'same' },
  { op: 'conv', x: [2, 16, 16, 8], k: 1, cout: 12, stride: 2, pad: 'same' },
  { op: 'conv', x: [2, 32, 32, 3], k: 3, cout: 22, stride: 1, pad: 'same' },
  { op: 'conv', x: [2, 17, 17, 3], k: 3, cout: 8, stride: 2, pad: 'same' },
  { op: 'conv', x: [1, 31, 30, 3], k: 7, cout: 16, stride: 2, pad: 'same' },
  { op: 'depthwise', x: [2, 32, 32, 66], k: 3, cout: 66, stride: 1, pad: 'same' },
  { op: 'depthwise', x: [2, 32, 32, 96], k: 3, cout: 96, stride: 2, pad: 'same' },
  { op: 'depthwise', x: [2, 8, 8, 267], k: 3, cout: 267, stride: 1, pad: 'same' },
  { op: 'depthwise', x: [2, 9, 9, 13], k: 3, cout: 13, stride: 2, pad: 'valid' },
];

function gradsOf(s: Shape): Float32Array[] {
  return tf.tidy(() => {
    const x = seeded(s.x, 1);
    const cin = s.x[3];
    const w = seeded(s.op === 'conv' ? [s.k, s.k, cin, s.cout] : [s.k, s.k, cin, 1], 2);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      s.op === 'conv'
        ? tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s.stride, s.pad)
        : tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, s.stride, s.pad);
    const r = seeded(f(x, w).shape, 3);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, b), r)))([x, w]);
    return [gx!.dataSync() as Float32Array, gw!.dataSync() as Float32Array];
  });
}

beforeAll(async () => {
  await initBackend({ prefer: 'wasm' });
});

describe('wasm gradient kernels vs cpu on network shapes', () => {
  it.each(
    SHAPES.map(
      (s) => [`${s.op} ${s.k}x${s.k} s${s.stride} ${s.pad} x=[${s.x}] cout=${s.cout}`, s] as const,
    ),
  )('%s', async (_, s) => {
    await tf.setBackend('cpu');
    const ref = gradsOf(s);
    await tf.setBackend('wasm');
    const got = gradsOf(s);
    expect(relErr(got[0]!, ref[0]!), 'dx').toBeLessThan(1e-5);
    expect(relErr(got[1]!, ref[1]!), 'dw').toBeLessThan(1e-5);
  });
});

describe('memory and caches', () => {
  it('kernels free their temporaries (tensors and wasm buffers flat)', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend();
    const step = () =>
      tf.tidy(() => {
        const x = seeded([2, 8, 8, 12], 4);
        const w1 = seeded([1, 1, 12, 20], 5);
        const w2 = seeded([3, 3, 20, 1], 6);
        const w3 = seeded([3, 3, 20, 7], 7);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
          const h = tf.conv2d(x as tf.Tensor4D, a as tf.Tensor4D, 1, 'same');
          const d = tf.depthwiseConv2d(h, b as tf.Tensor4D, 2, 'same');
          const y = batchNormTrain(d).y;
          return tf.sum(tf.conv2d(y as tf.Tensor4D, c as tf.Tensor4D, 1, 'same'));
        });
        g([w1, w2, w3]).forEach((t) => {
          t.dataSync();
        });
      });
    step();
    const tensors = tf.memory().numTensors;
    const buffers = backend.numDataIds();
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(buffers);
  });

  it('a later matmul on a reshaped dy does not pick up a stale operator', async () => {
    await tf.setBackend('wasm');
    const x = seeded([1, 4, 4, 6], 8);
    const w = seeded([1, 1, 6, 5], 9);
    const dy = seeded([1, 4, 4, 5], 10);
    const dw = tf.engine().runKernel(
      'Conv2DBackpropFilter',
      { x, dy },
      {
        strides: [1, 1],
        pad: 'same',
        dataFormat: 'NHWC',
        filterShape: [1, 1, 6, 5],
      },
    ) as tf.Tensor;
    const a = seeded([3, 8], 11);
    const got = tf.matMul(a, tf.reshape(dy, [8, 10])).dataSync();
    await tf.setBackend('cpu');
    const want = tf
      .matMul(tf.tensor(a.dataSync(), [3, 8]), tf.tensor(dy.dataSync(), [8, 10]))
      .dataSync();
    expect(relErr(got, want)).toBeLessThan(1e-5);
    await tf.setBackend('wasm');
    tf.dispose([x, w, dy, dw, a]);
  });
});

describe('batchNormTrain forward', () => {
  it.each(['wasm', 'cpu'])(
    'matches moments-based ops on %s, also with a large offset',
    async (b) => {
      await tf.setBackend(b);
      for (const [shape, offset] of [
        [[4, 8, 8, 37], 0],
        [[16, 5], 0],
        [[8, 4, 4, 9], 1000],
      ] as const) {
        tf.tidy(() => {
          const x = seeded([...shape], 12, offset);
          const got = batchNormTrain(x, 1e-5);
          const want = batchNormTrainOps(x, 1e-5);
          // Reference statistics in float64.
          const xv = x.dataSync();
          const C = shape[shape.length - 1]!;
          const R = xv.length / C;
          const mean = new Float64Array(C);
          const v = new Float64Array(C);
          for (let i = 0; i < xv.length; i++) mean[i % C] = mean[i % C]! + xv[i]! / R;
          for (let i = 0; i < xv.length; i++)
            v[i % C] = v[i % C]! + (xv[i]! - mean[i % C]!) ** 2 / R;
          expect(relErr(got.mean.dataSync(), mean)).toBeLessThan(1e-6);
          expect(relErr(got.variance.dataSync(), v)).toBeLessThan(offset === 0 ? 1e-5 : 1e-3);
          if (offset === 0) expect(relErr(got.y.dataSync(), want.y.dataSync())).toBeLessThan(1e-4);
          expect(got.y.shape).toEqual(x.shape);
        });
      }
    },
  );
});

describe('SIMD wasm kernels vs the TypeScript loops', () => {
  it('the SIMD module instantiates on the wasm backend heap', async () => {
    await tf.setBackend('wasm');
    expect(simdKernels(asWasmBackend(tf.backend()))).not.toBeNull();
  });

  const run = (f: () => tf.Tensor[]): Float32Array[] =>
    tf.tidy(() => f().map((t) => t.dataSync() as Float32Array));

  it.each([
    [[3, 9, 7, 13], 1, 'same'],
    [[2, 10, 10, 40], 2, 'same'],
    [[2, 9, 8, 6], 2, 'valid'],
    [[1, 5, 5, 3], 1, 'valid'],
  ] as const)('depthwise filter grad x=[%s] s%s %s', async (xs, stride, pad) => {
    await tf.setBackend('wasm');
    const grad = () => {
      const x = seeded([...xs], 20);
      const w = seeded([3, 3, xs[3], 1], 21);
      const r = seeded(
        tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad).shape,
        22,
      );
      const g = tf.grad((b: tf.Tensor) =>
        tf.sum(tf.mul(tf.depthwiseConv2d(x as tf.Tensor4D, b as tf.Tensor4D, stride, pad), r)),
      );
      return [g(w)];
    };
    useSimdKernels(false);
    const ref = run(grad);
    useSimdKernels(true);
    const got = run(grad);
    expect(relErr(got[0]!, ref[0]!)).toBeLessThan(1e-6);
  });

  it.each([
    [[4, 6, 6, 13], 0],
    [[3, 5, 5, 8], 5],
    [[130, 7], 0],
    [[2, 3, 3, 1], 0],
  ] as const)('batchNormTrain forward and backward on [%s], offset %s', async (shape, offset) => {
    await tf.setBackend('wasm');
    const both = () => {
      const x = seeded([...shape], 23, offset);
      const r = seeded([...shape], 24);
      const { y, mean, variance } = batchNormTrain(x, 1e-5);
      const g = tf.grad((a: tf.Tensor) => {
        const o = batchNormTrain(a, 1e-5);
        return tf.add(tf.sum(tf.mul(o.y, r)), tf.sum(tf.mul(o.variance, 0.5)));
      });
      return [y, mean, variance, g(x)];
    };
    useSimdKernels(false);
    const ref = run(both);
    useSimdKernels(true);
    const got = run(both);
    const names = ['y', 'mean', 'variance', 'dx'];
    got.forEach((v, i) => {
      expect(relErr(v, ref[i]!), names[i]).toBeLessThan(2e-5);
    });
  });

  it.each([
    [[4, 6, 6, 13], 0],
    [[3, 5, 5, 8], 5],
    [[130, 7], 0],
  ] as const)(
    'affine batch norm: fused kernels (SIMD and loops) vs tf autodiff on [%s], offset %s',
    async (shape, offset) => {
      await tf.setBackend('wasm');
      const C = shape[shape.length - 1]!;
      // Reference: tf ops only (no engine kernel), differentiated by the tape.
      const reference = () => {
        const x = seeded([...shape], 25, offset);
        const gamma = seeded([C], 26, 1);
        const beta = seeded([C], 27);
        const r = seeded([...shape], 28);
        const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.add(tf.mul(batchNormTrainOps(a, 1e-5).y, g), b), r));
        const z = tf.add(tf.mul(batchNormTrainOps(x, 1e-5).y, gamma), beta);
        return [z, ...tf.grads(f)([x, gamma, beta])];
      };
      const fused = () => {
        const x = seeded([...shape], 25, offset);
        const gamma = seeded([C], 26, 1);
        const beta = seeded([C], 27);
        const r = seeded([...shape], 28);
        const { y, variance } = batchNormTrain(x, 1e-5);
        const z = scaleShift(y, gamma, beta);
        const g = batchNormAffineGrad(r, y, variance, gamma, 1e-5);
        return [z, g.dx, g.dgamma, g.dbeta];
      };
      const ref = run(reference);
      const names = ['z', 'dx', 'dgamma', 'dbeta'];
      for (const simd of [true, false]) {
        useSimdKernels(simd);
        const got = run(fused);
        got.forEach((v, i) => {
          expect(relErr(v, ref[i]!), `${names[i]} simd=${simd}`).toBeLessThan(1e-4);
        });
      }
      useSimdKernels(true);
    },
  );
});
