/**
 * Uniform float32 array access to tensors of the backends whose data lives in JS-visible
 * memory (wasm heap, cpu typed arrays), for kernels written as loops.
 * Allocate every output before taking any view (a wasm allocation may move the heap).
 */
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs';
import { alloc, asWasmBackend, f32 } from './heap.js';

export interface ArrayIO {
  alloc(shape: number[]): TensorInfo;
  view(t: TensorInfo): Float32Array;
}

interface CpuBackendLike extends KernelBackend {
  data: { get(dataId: object): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: 'float32', values?: Float32Array): TensorInfo;
}

export function arrayIO(backend: KernelBackend, backendName: string): ArrayIO {
  if (backendName === 'wasm') {
    const b = asWasmBackend(backend);
    return { alloc: (shape) => alloc(b, shape), view: (t) => f32(b, t) };
  }
  if (backendName === 'cpu') {
    const b = backend as CpuBackendLike;
    return {
      alloc: (shape) =>
        b.makeTensorInfo(shape, 'float32', new Float32Array(shape.reduce((p, q) => p * q, 1))),
      view: (t) => {
        const v = b.data.get(t.dataId)?.values;
        if (!(v instanceof Float32Array)) throw new Error('cpu tensor without float32 values');
        return v;
      },
    };
  }
  throw new Error(`no array access for backend '${backendName}'`);
}
