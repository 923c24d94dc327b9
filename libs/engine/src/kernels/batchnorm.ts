/**
 * Training-mode batch normalisation without affine parameters, as one kernel with its own
 * gradient: statistics in one pass, normalisation in a second; backward in two passes.
 * Replaces ~12 small ops (and their autodiff) of `tf.moments` + arithmetic.
 *
 *   y = (x - mean) / sqrt(variance + eps), statistics over every axis but the last.
 *
 * Registered for wasm and cpu (loops over their memory; SIMD wasm when available);
 * on other backends `batchNormTrain` falls back to the same maths in tf ops.
 */

import type {
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  Tensor,
  TensorInfo,
} from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs';
import { arrayIO } from './array-io.js';
import { bnAffineBackwardLoop, bnBackwardLoop, bnForwardLoop, scaleShiftLoop } from './bn-math.js';
import { asWasmBackend } from './heap.js';
import { simdKernels } from './simd.js';

export const BN_TRAIN = 'MetapruneBatchNormTrain';
export const BN_TRAIN_GRAD = 'MetapruneBatchNormTrainGrad';
/** Backward of batchNormTrain + gamma * y + beta: outputs dx, dgamma, dbeta. */
export const BN_AFFINE_GRAD = 'MetapruneBatchNormAffineGrad';
/** x * gamma + beta over the last axis. */
export const SCALE_SHIFT = 'MetapruneScaleShift';

export interface BatchNormTrainResult {
  /** Normalised x, same shape. */
  y: Tensor;
  /** Per-channel batch mean, shape [C]. */
  mean: Tensor;
  /** Per-channel biased batch variance, shape [C]. */
  variance: Tensor;
}

function channelsOf(shape: number[]): number {
  const C = shape[shape.length - 1];
  if (C == null || shape.length < 2)
    throw new Error(`batchNormTrain: need rank >= 2, got [${shape}]`);
  return C;
}

function bnForwardKernel(backendName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: TensorInfo };
    const eps = (attrs as { eps: number }).eps;
    const C = channelsOf(x.shape);
    const io = arrayIO(backend as KernelBackend, backendName);
    const y = io.alloc(x.shape);
    const mean = io.alloc([C]);
    const variance = io.alloc([C]);
    const simd = backendName === 'wasm' ? simdKernels(asWasmBackend(backend)) : null;
    if (simd?.bnForward(asWasmBackend(backend), x, y, mean, variance, eps))
      return [y, mean, variance];
    bnForwardLoop(io.view(x), io.view(y), io.view(mean), io.view(variance), C, eps);
    return [y, mean, variance];
  };
}

function bnBackwardKernel(backendName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, y, variance, dmean, dvar } = inputs as Record<string, TensorInfo>;
    const eps = (attrs as { eps: number }).eps;
    const io = arrayIO(backend as KernelBackend, backendName);
    const dx = io.alloc(dy!.shape);
    const simd = backendName === 'wasm' ? simdKernels(asWasmBackend(backend)) : null;
    if (simd?.bnBackward(asWasmBackend(backend), dy!, y!, variance!, dmean!, dvar!, dx, eps)) {
      return dx;
    }
    bnBackwardLoop(
      io.view(dy!),
      io.view(y!),
      io.view(variance!),
      io.view(dmean!),
      io.view(dvar!),
      io.view(dx),
      eps,
    );
    return dx;
  };
}

function bnAffineBackwardKernel(backendName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dz, y, variance, gamma } = inputs as Record<string, TensorInfo>;
    const eps = (attrs as { eps: number }).eps;
    const C = channelsOf(dz!.shape);
    const io = arrayIO(backend as KernelBackend, backendName);
    const dx = io.alloc(dz!.shape);
    const dgamma = io.alloc([C]);
    const dbeta = io.alloc([C]);
    const simd = backendName === 'wasm' ? simdKernels(asWasmBackend(backend)) : null;
    const b = asWasmBackend(backend);
    if (simd?.bnAffineBackward(b, dz!, y!, variance!, gamma!, dx, dgamma, dbeta, eps)) {
      return [dx, dgamma, dbeta];
    }
    bnAffineBackwardLoop(
      io.view(dz!),
      io.view(y!),
      io.view(variance!),
      io.view(gamma!),
      io.view(dx),
      io.view(dgamma),
      io.view(dbeta),
      eps,
    );
    return [dx, dgamma, dbeta];
  };
}

function scaleShiftKernel(backendName: string): KernelFunc {
  return ({ inputs, backend }) => {
    const { x, gamma, beta } = inputs as Record<string, TensorInfo>;
    const io = arrayIO(backend as KernelBackend, backendName);
    const out = io.alloc(x!.shape);
    const simd = backendName === 'wasm' ? simdKernels(asWasmBackend(backend)) : null;
    if (simd?.scaleShift(asWasmBackend(backend), x!, gamma!, beta!, out)) return out;
    scaleShiftLoop(io.view(x!), io.view(gamma!), io.view(beta!), io.view(out));
    return out;
  };
}

export const BATCH_NORM_KERNELS: readonly KernelConfig[] = ['wasm', 'cpu'].flatMap((b) => [
  { kernelName: BN_TRAIN, backendName: b, kernelFunc: bnForwardKernel(b) },
  { kernelName: BN_TRAIN_GRAD, backendName: b, kernelFunc: bnBackwardKernel(b) },
  { kernelName: BN_AFFINE_GRAD, backendName: b, kernelFunc: bnAffineBackwardKernel(b) },
  { kernelName: SCALE_SHIFT, backendName: b, kernelFunc: scaleShiftKernel(b) },
]);

let gradientRegistered = false;

/** Registers the gradient of BN_TRAIN (backend independent; idempotent). */
export function registerBatchNormGradient(): void {
  if (gradientRegistered || tf.getGradient(BN_TRAIN) != null) {
    gradientRegistered = true;
    return;
  }
  tf.registerGradient({
    kernelName: BN_TRAIN,
    outputsToSave: [true, false, true],
    gradFunc: (dys, saved, attrs) => {
      const [dy, dmean, dvar] = dys as Tensor[];
      const [y, variance] = saved;
      return {
        x: () =>
          tf
            .engine()
            .runKernel(
              BN_TRAIN_GRAD,
              { dy: dy!, y: y!, variance: variance!, dmean: dmean!, dvar: dvar! },
              attrs as NamedAttrMap,
            ) as Tensor,
      };
    },
  });
  gradientRegistered = true;
}

/** The same maths in tf ops, for backends without the kernel (autodiff gives the gradient). */
export function batchNormTrainOps(x: Tensor, eps = 1e-5): BatchNormTrainResult {
  return tf.tidy(() => {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return { y, mean, variance };
  });
}

/**
 * Normalises x (any rank >= 2, channels last) with its batch statistics. Differentiable in x,
 * through y and also through mean and variance.
 */
export function batchNormTrain(x: Tensor, eps = 1e-5): BatchNormTrainResult {
  const name = tf.getBackend();
  if (tf.getKernel(BN_TRAIN, name) == null || x.dtype !== 'float32')
    return batchNormTrainOps(x, eps);
  registerBatchNormGradient();
  const [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x }, { eps }) as Tensor[];
  return { y: y!, mean: mean!, variance: variance! };
}

const hasKernel = (name: string, ...ts: Tensor[]) =>
  tf.getKernel(name, tf.getBackend()) != null && ts.every((t) => t.dtype === 'float32');

/** `x * gamma + beta` over the last axis (forward only: the backward is batchNormAffineGrad). */
export function scaleShift(x: Tensor, gamma: Tensor, beta: Tensor): Tensor {
  if (!hasKernel(SCALE_SHIFT, x, gamma, beta)) return tf.tidy(() => tf.add(tf.mul(x, gamma), beta));
  return tf.engine().runKernel(SCALE_SHIFT, { x, gamma, beta }) as Tensor;
}

export interface BatchNormAffineGrads {
  dx: Tensor;
  dgamma: Tensor;
  dbeta: Tensor;
}

/**
 * Gradients of z = gamma * batchNormTrain(x).y + beta from dz, given the normalised `y` and
 * the batch `variance` the forward pass returned: one fused kernel where registered,
 * otherwise the same maths in tf ops.
 */
export function batchNormAffineGrad(
  dz: Tensor,
  y: Tensor,
  variance: Tensor,
  gamma: Tensor,
  eps = 1e-5,
): BatchNormAffineGrads {
  if (hasKernel(BN_AFFINE_GRAD, dz, y, variance, gamma)) {
    const [dx, dgamma, dbeta] = tf
      .engine()
      .runKernel(BN_AFFINE_GRAD, { dz, y, variance, gamma }, { eps }) as Tensor[];
    return { dx: dx!, dgamma: dgamma!, dbeta: dbeta! };
  }
  return tf.tidy(() => {
    const axes = dz.shape.slice(0, -1).map((_, k) => k);
    const dbeta = tf.sum(dz, axes);
    const dgamma = tf.sum(tf.mul(dz, y), axes);
    const dy = tf.mul(dz, gamma);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const m1 = tf.mean(dy, axes);
    const m2 = tf.mean(tf.mul(dy, y), axes);
    const dx = tf.mul(tf.sub(tf.sub(dy, m1), tf.mul(y, m2)), rstd);
    return { dx, dgamma, dbeta };
  });
}
