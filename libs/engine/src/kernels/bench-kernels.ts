/**
 * Micro-benchmark of the gradient kernels and batch norm on the shapes of the benchmark
 * network (mobilenetv2 small-input, width 0.5, batch 64). Prints one JSON object per line:
 *   {"bench":"kernels","op":...,"impl":...,"shape":...,"ms":median,"gmacs"?:...}
 * Run: npx vite-node libs/engine/src/kernels/bench-kernels.ts [--reps N] [--only dwf,dwi,conv,bn]
 * No assertions: compare lines of one run.
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/select.js';
import { BN_TRAIN_GRAD, batchNormTrain, batchNormTrainOps } from './batchnorm.js';

type S4 = [number, number, number, number];

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(reps: number, f: () => void): number {
  f();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify({ bench: 'kernels', backend: tf.getBackend(), ...o }));
}

/** The straightforward composite (sum over taps of strided slices times dy), for reference. */
function depthwiseFilterGradComposite(x: tf.Tensor4D, dy: tf.Tensor4D, stride: number): tf.Tensor {
  return tf.tidy(() => {
    const [N, H, W, C] = x.shape;
    const [, OH, OW] = dy.shape;
    const padH = Math.max((OH - 1) * stride + 3 - H, 0);
    const padW = Math.max((OW - 1) * stride + 3 - W, 0);
    const xp = tf.pad(x, [
      [0, 0],
      [Math.floor(padH / 2), padH - Math.floor(padH / 2)],
      [Math.floor(padW / 2), padW - Math.floor(padW / 2)],
      [0, 0],
    ]);
    const taps: tf.Tensor[] = [];
    for (let kh = 0; kh < 3; kh++) {
      for (let kw = 0; kw < 3; kw++) {
        const s = tf.stridedSlice(
          xp,
          [0, kh, kw, 0],
          [N, kh + (OH - 1) * stride + 1, kw + (OW - 1) * stride + 1, C],
          [1, stride, stride, 1],
        );
        taps.push(tf.sum(tf.mul(s, dy), [0, 1, 2]));
      }
    }
    return tf.reshape(tf.stack(taps), [3, 3, C, 1]);
  });
}

const DW: [S4, 1 | 2][] = [
  [[64, 32, 32, 96], 1],
  [[64, 32, 32, 96], 2],
  [[64, 16, 16, 132], 1],
  [[64, 8, 8, 264], 1],
  [[64, 4, 4, 672], 1],
];
const CONV: [S4, number, number][] = [
  [[64, 32, 32, 3], 3, 22],
  [[64, 32, 32, 16], 1, 96],
  [[64, 32, 32, 96], 1, 16],
  [[64, 8, 8, 264], 1, 44],
  [[64, 4, 4, 224], 1, 1280],
];
const BN: S4[] = [
  [64, 32, 32, 96],
  [64, 16, 16, 132],
  [64, 8, 8, 264],
];

export async function main(argv: string[]): Promise<void> {
  const arg = (k: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const reps = Number(arg('--reps') ?? 5);
  const only = new Set((arg('--only') ?? 'dwf,dwi,conv,bn').split(','));
  const info = await initBackend({ prefer: 'wasm' });
  emit({ op: 'backend', ...info });
  const attrs = (stride: number, filterShape: number[]) => ({
    strides: [stride, stride],
    pad: 'same',
    dilations: [1, 1],
    dataFormat: 'NHWC',
    filterShape,
  });
  for (const [xs, stride] of DW) {
    const [N, H, W, C] = xs;
    const OH = Math.ceil(H / stride);
    const OW = Math.ceil(W / stride);
    const x = tf.randomNormal(xs) as tf.Tensor4D;
    const dy = tf.randomNormal([N, OH, OW, C]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, C, 1]);
    const macs = N * OH * OW * C * 9;
    const shape = `[${xs}] s${stride}`;
    if (only.has('dwf')) {
      const ms = time(reps, () =>
        tf.dispose(
          tf
            .engine()
            .runKernel(
              'DepthwiseConv2dNativeBackpropFilter',
              { x, dy },
              attrs(stride, [3, 3, C, 1]),
            ),
        ),
      );
      emit({ op: 'dw_filter_grad', impl: 'kernel', shape, ms, gmacs: macs / ms / 1e6 });
      const msc = time(Math.min(reps, 3), () =>
        tf.dispose(depthwiseFilterGradComposite(x, dy, stride)),
      );
      emit({ op: 'dw_filter_grad', impl: 'composite', shape, ms: msc, gmacs: macs / msc / 1e6 });
    }
    if (only.has('dwi')) {
      const ms = time(reps, () =>
        tf.dispose(
          tf.engine().runKernel(
            'DepthwiseConv2dNativeBackpropInput',
            { dy, filter: f },
            {
              ...attrs(stride, []),
              inputShape: xs,
            },
          ),
        ),
      );
      emit({ op: 'dw_input_grad', impl: 'kernel', shape, ms, gmacs: macs / ms / 1e6 });
      const msf = time(reps, () =>
        tf.dispose(tf.depthwiseConv2d(x, f as tf.Tensor4D, stride, 'same')),
      );
      emit({ op: 'dw_forward', impl: 'xnnpack', shape, ms: msf, gmacs: macs / msf / 1e6 });
    }
    tf.dispose([x, dy, f]);
  }
  if (only.has('conv')) {
    for (const [xs, k, cout] of CONV) {
      const [N, H, W] = xs;
      const x = tf.randomNormal(xs);
      const dy = tf.randomNormal([N, H, W, cout]);
      const fs: S4 = [k, k, xs[3], cout];
      const macs = N * H * W * k * k * xs[3] * cout;
      const ms = time(reps, () =>
        tf.dispose(tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs(1, fs))),
      );
      emit({
        op: 'conv_filter_grad',
        impl: 'kernel',
        shape: `[${xs}] k${k} cout${cout}`,
        ms,
        gmacs: macs / ms / 1e6,
      });
      const w = tf.randomNormal(fs) as tf.Tensor4D;
      const msf = time(reps, () => tf.dispose(tf.conv2d(x as tf.Tensor4D, w, 1, 'same')));
      emit({
        op: 'conv_forward',
        impl: 'xnnpack',
        shape: `[${xs}] k${k} cout${cout}`,
        ms: msf,
        gmacs: macs / msf / 1e6,
      });
      tf.dispose([x, dy, w]);
    }
  }
  if (only.has('bn')) {
    for (const xs of BN) {
      const x = tf.randomNormal(xs);
      const r = tf.randomNormal(xs);
      for (const [impl, bn] of [
        ['kernel', batchNormTrain],
        ['ops', batchNormTrainOps],
      ] as const) {
        const fwd = time(reps, () => tf.dispose(Object.values(bn(x))));
        const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(bn(a).y, r)));
        const both = time(reps, () => tf.dispose(g(x)));
        emit({ op: 'batch_norm_train', impl, shape: `[${xs}]`, ms_forward: fwd, ms: both });
      }
      // The backward kernel alone (what the tape calls), and the probe's own cost for reference.
      const { y, variance } = batchNormTrain(x);
      const C = xs[3];
      const z = tf.zeros([C]);
      const bwd = time(reps, () =>
        tf.dispose(
          tf
            .engine()
            .runKernel(BN_TRAIN_GRAD, { dy: r, y, variance, dmean: z, dvar: z }, { eps: 1e-5 }),
        ),
      );
      emit({ op: 'batch_norm_train_grad', impl: 'kernel', shape: `[${xs}]`, ms: bwd });
      const probe = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(a, r)));
      emit({
        op: 'probe_sum_mul_grad',
        impl: 'ops',
        shape: `[${xs}]`,
        ms: time(reps, () => tf.dispose(probe(x))),
      });
      tf.dispose([x, r, y, variance, z]);
    }
  }
}

const self = pathToFileURL(process.argv[1] ?? '').href;
// Entry point under node (built file) or vite-node (which drops the script from argv).
if (self === import.meta.url || (process.argv[1] ?? '').endsWith('vite-node')) {
  await main(process.argv.slice(2));
}
