/**
 * Direct access to the tfjs wasm backend's heap, for kernels written in TypeScript (or in
 * our own small wasm module) that read and write tensors in place, without the copies that
 * `readSync`/`tf.tensor` would make.
 *
 * Trap: allocating an output (`makeOutput`) may grow the wasm memory, which detaches every
 * typed-array view taken before. Allocate all outputs first, then take views.
 */
import type { DataType, KernelBackend, TensorInfo } from '@tensorflow/tfjs';

export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: DataType;
  refCount: number;
}

export interface WasmModuleLike {
  HEAPU8: Uint8Array;
  HEAPF32: Float32Array;
  /** Emscripten exports; `memory` is the WebAssembly.Memory object. */
  asm?: { memory?: object };
}

/** The parts of `BackendWasm` the kernels here use (its published types are incomplete). */
export interface WasmBackendLike extends KernelBackend {
  wasm: WasmModuleLike;
  dataIdMap: { get(dataId: object): WasmTensorData | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

export function asWasmBackend(backend: unknown): WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | null;
  if (b == null || b.wasm == null || b.dataIdMap == null || typeof b.makeOutput !== 'function') {
    throw new Error('expected the tfjs wasm backend');
  }
  return b as WasmBackendLike;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function offsetOf(backend: WasmBackendLike, t: TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (data == null) throw new Error('tensor is not on the wasm backend (disposed?)');
  return data.memoryOffset;
}

/** A float32 view of the tensor's data (valid until the next allocation). */
export function f32(backend: WasmBackendLike, t: TensorInfo): Float32Array {
  const size = t.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(backend.wasm.HEAPU8.buffer, offsetOf(backend, t), size);
}

/** Allocates a float32 output; `zero` fills it with zeros (makeOutput does not). */
export function alloc(backend: WasmBackendLike, shape: number[], zero = false): TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  if (zero) f32(backend, out).fill(0);
  return out;
}

/** Same data, new shape (shares the buffer: dispose it like any other result). */
export function reshapeInfo(backend: WasmBackendLike, t: TensorInfo, shape: number[]): TensorInfo {
  backend.incRef(t.dataId);
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/** A copy with a fresh tensor id (memcpy inside the heap). */
export function copyInfo(backend: WasmBackendLike, t: TensorInfo, shape = t.shape): TensorInfo {
  const out = alloc(backend, shape);
  const size = shape.reduce((a, b) => a * b, 1);
  const heap = backend.wasm.HEAPF32;
  const src = offsetOf(backend, t) >>> 2;
  heap.copyWithin(offsetOf(backend, out) >>> 2, src, src + size);
  return out;
}

export function dispose(backend: WasmBackendLike, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}
