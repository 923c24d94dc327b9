import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  BACKEND_NAMES,
  BackendUnavailableError,
  CUSTOM_KERNELS,
  initBackend,
  MISSING_KERNELS,
  parseBackendName,
  registerMissingKernels,
} from '../src/index.js';

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

describe('initBackend', () => {
  it('picks the first available backend in order (wasm here) and reports it', async () => {
    const info = await initBackend();
    expect(BACKEND_NAMES).toContain(info.name);
    if (!installed('@tensorflow/tfjs-node-gpu') && !installed('@tensorflow/tfjs-node')) {
      expect(info.name).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      expect(typeof info.simd).toBe('boolean');
      expect(info.threads).toBeGreaterThanOrEqual(1);
    }
  });

  it('registers the missing wasm gradient kernels', async () => {
    await initBackend({ prefer: 'wasm' });
    for (const k of [
      'Conv2DBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput',
      'DepthwiseConv2dNativeBackpropFilter',
    ]) {
      expect(tf.getKernel(k, 'wasm'), k).toBeDefined();
    }
    // Idempotent: a second registration registers nothing.
    expect(registerMissingKernels('wasm')).toEqual([]);
  });

  it('leaves the cpu backend its own gradient kernels', async () => {
    await initBackend({ prefer: 'cpu' });
    const ours = new Set(MISSING_KERNELS.map((k) => k.kernelFunc));
    for (const k of MISSING_KERNELS) {
      expect(k.backendName).toBe('wasm');
      const cpu = tf.getKernel(k.kernelName, 'cpu');
      expect(cpu, k.kernelName).toBeDefined();
      expect(ours.has(cpu!.kernelFunc)).toBe(false);
    }
    for (const k of CUSTOM_KERNELS) expect(k.kernelName.startsWith('Metaprune')).toBe(true);
  });

  it('honours an explicit choice', async () => {
    const cpu = await initBackend({ prefer: 'cpu' });
    expect(cpu).toEqual({ name: 'cpu', simd: false, threads: 1 });
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await initBackend({ prefer: 'wasm' });
    expect(wasm.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it.each([
    ['tensorflow', '@tensorflow/tfjs-node'],
    ['tensorflow-gpu', '@tensorflow/tfjs-node-gpu'],
  ] as const)(
    '%s: works when installed, else names the backend and what to install',
    async (name, pkg) => {
      await initBackend({ prefer: 'wasm' });
      if (installed(pkg)) {
        expect((await initBackend({ prefer: name })).name).toBe(name);
        return;
      }
      const err = await initBackend({ prefer: name }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toContain(`'${name}'`);
      expect((err as Error).message).toContain(`install ${pkg}`);
      expect(tf.getBackend()).toBe('wasm');
    },
  );
});

describe('parseBackendName', () => {
  it('accepts the names, auto and empty', () => {
    for (const n of BACKEND_NAMES) expect(parseBackendName(n)).toBe(n);
    expect(parseBackendName(undefined)).toBeUndefined();
    expect(parseBackendName('')).toBeUndefined();
    expect(parseBackendName('auto')).toBeUndefined();
  });
  it('rejects anything else, listing the valid names', () => {
    expect(() => parseBackendName('webgl')).toThrow(/tensorflow-gpu, tensorflow, wasm, cpu/);
  });
});
