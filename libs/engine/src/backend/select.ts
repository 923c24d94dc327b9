/**
 * Picks the tfjs backend at start: tfjs-node-gpu, then tfjs-node, then wasm, then cpu.
 * The native packages are optional (not dependencies): they are loaded through a
 * non-literal dynamic import so neither TypeScript nor a bundler requires them.
 */

import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerMissingKernels } from '../kernels/register.js';

export const BACKEND_NAMES = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendInfo {
  /** Which of BACKEND_NAMES runs (tfjs itself calls both native ones 'tensorflow'). */
  name: BackendName;
  /** wasm: SIMD build loaded. Native backends: true (vectorised kernels). */
  simd: boolean;
  /** Threads the backend computes with. */
  threads: number;
}

export interface InitBackendOptions {
  /** Use exactly this backend (error if unavailable); default: first available in order. */
  prefer?: BackendName;
}

/** Env variable a caller may pass to `prefer` (through `parseBackendName`). */
export const BACKEND_ENV = 'METAPRUNE_BACKEND';

/** Validates a backend name from a flag or env variable; undefined/empty means "auto". */
export function parseBackendName(value: string | undefined): BackendName | undefined {
  if (value == null || value === '' || value === 'auto') return undefined;
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(
    `unknown backend '${value}': expected one of ${BACKEND_NAMES.join(', ')} or auto`,
  );
}

const INSTALL_HINT: Record<BackendName, string> = {
  'tensorflow-gpu':
    'install @tensorflow/tfjs-node-gpu (needs libtensorflow with CUDA; same version as @tensorflow/tfjs)',
  tensorflow:
    'install @tensorflow/tfjs-node (needs libtensorflow; same version as @tensorflow/tfjs)',
  wasm: 'install @tensorflow/tfjs-backend-wasm (same version as @tensorflow/tfjs)',
  cpu: 'reinstall @tensorflow/tfjs (its cpu backend is built in)',
};

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    cause: unknown,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`tfjs backend '${backend}' is unavailable (${why}); to use it, ${INSTALL_HINT[backend]}`);
    this.name = 'BackendUnavailableError';
  }
}

async function importOptional(specifier: string): Promise<unknown> {
  return import(specifier);
}

async function activate(tfName: string): Promise<void> {
  const ok = await tf.setBackend(tfName);
  if (!ok || tf.getBackend() !== tfName) throw new Error(`tf.setBackend('${tfName}') failed`);
  await tf.ready();
}

let wasmPathsSet = false;

async function tryBackend(name: BackendName): Promise<BackendInfo> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      await importOptional(
        name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node',
      );
      await activate('tensorflow');
      return { name, simd: true, threads: availableParallelism() };
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      if (!wasmPathsSet && tf.findBackend('wasm') == null) {
        // Local .wasm files next to the package's entry point: no network, no fetch.
        const require = createRequire(import.meta.url);
        const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
        wasm.setWasmPaths(`${dir}/`);
        wasmPathsSet = true;
      }
      registerMissingKernels('wasm');
      await activate('wasm');
      const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
      return { name, simd, threads: wasm.getThreadsCount() };
    }
    case 'cpu': {
      registerMissingKernels('cpu');
      await activate('cpu');
      return { name, simd: false, threads: 1 };
    }
  }
}

/**
 * Activates a tfjs backend and returns what runs. With `prefer`, only that backend is tried
 * and a BackendUnavailableError names it and what to install; without, the first that works
 * in BACKEND_NAMES order. The caller maps --backend / METAPRUNE_BACKEND to `prefer` (see
 * parseBackendName).
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  if (options.prefer != null) {
    const name = parseBackendName(options.prefer);
    if (name == null) return initBackend({});
    try {
      return await tryBackend(name);
    } catch (err) {
      throw new BackendUnavailableError(name, err);
    }
  }
  const failures: string[] = [];
  for (const name of BACKEND_NAMES) {
    try {
      return await tryBackend(name);
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`no tfjs backend could start:\n  ${failures.join('\n  ')}`);
}
