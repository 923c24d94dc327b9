/**
 * Kernels that some tfjs backends lack, as data: one row per (kernel, backend). Only rows
 * whose kernel is missing on that backend are registered, so native backends (tfjs-node,
 * cpu) keep their own kernels and gradients.
 */
import { getKernel, type KernelConfig, registerKernel } from '@tensorflow/tfjs';
import { BATCH_NORM_KERNELS, registerBatchNormGradient } from './batchnorm.js';
import {
  conv2dBackpropFilterWasm,
  depthwiseConv2dNativeBackpropFilterWasm,
  depthwiseConv2dNativeBackpropInputWasm,
} from './conv-grads.js';

export const MISSING_KERNELS: readonly KernelConfig[] = [
  { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2dBackpropFilterWasm },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    backendName: 'wasm',
    kernelFunc: depthwiseConv2dNativeBackpropInputWasm,
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    backendName: 'wasm',
    kernelFunc: depthwiseConv2dNativeBackpropFilterWasm,
  },
];

/** Our own fused kernels (name prefix Metaprune), for the backends with loop access. */
export const CUSTOM_KERNELS: readonly KernelConfig[] = [...BATCH_NORM_KERNELS];

/**
 * Registers the rows of MISSING_KERNELS and CUSTOM_KERNELS for `backendName` whose kernel is not registered
 * yet. Idempotent. Returns the kernel names registered by this call.
 */
export function registerMissingKernels(backendName: string): string[] {
  const done: string[] = [];
  registerBatchNormGradient();
  for (const cfg of [...MISSING_KERNELS, ...CUSTOM_KERNELS]) {
    if (cfg.backendName !== backendName) continue;
    if (getKernel(cfg.kernelName, backendName) != null) continue;
    registerKernel(cfg);
    done.push(cfg.kernelName);
  }
  return done;
}
