/**
 * The shapes of a PruningNet's parameters and optimiser state, and of the wasm memory they
 * may live in. Types only, so params.ts (allocation) and wasm-gen.ts (kernels) share them
 * without importing each other.
 */

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** Offsets (bytes) of the state arrays in a wasm state memory. */
export interface WasmStateOffsets {
  w2: number;
  b2: number;
  small: number;
  mw2: number;
  mb2: number;
  msmall: number;
  lastStep: number;
}

export interface ParamArrays {
  /** Second-FC weights of every generator, one row of `hidden` per generated element. */
  w2: Float32Array;
  /** Second-FC biases, one per generated element (row). */
  b2: Float32Array;
  /** First-FC weights and biases of every generator, then the classifier. */
  small: Float32Array;
}

export interface PruningNetState {
  params: ParamArrays;
  /** SGD momentum buffers, same shapes. */
  momentum: ParamArrays;
  /**
   * Per generated row: the global step whose update the row's w2/b2/momentum reflect
   * (-1: initial). Rows a step does not touch are brought up to date lazily (exact
   * momentum catch-up) when next touched, or by `flush`.
   */
  lastStep: Int32Array;
  /**
   * Present when the arrays live in one shared WebAssembly.Memory (the generator kernels
   * run on it; worker threads map the same offsets).
   */
  wasm?: { memory: WasmMemory; offsets: WasmStateOffsets };
}
