/**
 * PruningNet parameters and optimiser state as plain float arrays (optionally in
 * SharedArrayBuffers, so worker threads read and update them in place), initialised like
 * PyTorch's nn.Linear (uniform in +-1/sqrt(fan_in) for weights and biases).
 */
import { Rng } from '@metaprune/data';
import type { PruningNetLayout } from './layout.js';
import type { ParamArrays, PruningNetState, WasmMemory, WasmStateOffsets } from './state.js';
import { allocWasmState, stateViews } from './wasm-gen.js';

export type { ParamArrays, PruningNetState } from './state.js';

function f32(n: number, shared: boolean): Float32Array {
  return shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
}

export function allocParams(layout: PruningNetLayout, shared: boolean): ParamArrays {
  return {
    w2: f32(layout.w2Size, shared),
    b2: f32(layout.totalRows, shared),
    small: f32(layout.smallSize, shared),
  };
}

/**
 * Allocates parameters and optimiser state: in a shared WebAssembly.Memory when it fits
 * (then the SIMD generator kernels run on it), else in (Shared)ArrayBuffers.
 */
export function allocState(layout: PruningNetLayout, shared: boolean): PruningNetState {
  const inWasm = allocWasmState(layout);
  if (inWasm) {
    inWasm.lastStep.fill(-1);
    return inWasm;
  }
  const lastStep = shared
    ? new Int32Array(new SharedArrayBuffer(layout.totalRows * 4))
    : new Int32Array(layout.totalRows);
  lastStep.fill(-1);
  return {
    params: allocParams(layout, shared),
    momentum: allocParams(layout, shared),
    lastStep,
  };
}

function uniform(rng: Rng, a: Float32Array, off: number, n: number, bound: number): void {
  for (let i = 0; i < n; i++) a[off + i] = (2 * rng.next() - 1) * bound;
}

/** PyTorch nn.Linear default initialisation, from a seeded generator. */
export function initParams(layout: PruningNetLayout, p: ParamArrays, seed: number): void {
  const rng = new Rng(seed);
  for (const g of layout.gens) {
    if (g == null) continue;
    const b1 = 1 / Math.sqrt(g.codeLen);
    uniform(rng, p.small, g.w1Off, g.codeLen * g.hidden, b1);
    uniform(rng, p.small, g.b1Off, g.hidden, b1);
    const b2 = 1 / Math.sqrt(g.hidden);
    uniform(rng, p.w2, g.w2Off, g.rows * g.hidden, b2);
    uniform(rng, p.b2, g.rowOff, g.rows, b2);
  }
  for (const f of layout.fcs) {
    const b = 1 / Math.sqrt(f.cinMax);
    uniform(rng, p.small, f.wOff, f.cinMax * f.cout, b);
    uniform(rng, p.small, f.bOff, f.cout, b);
  }
}

/** What a worker thread needs to map a state allocated with `shared` (posted via workerData). */
export type SharedStateHandle =
  | { kind: 'wasm'; memory: WasmMemory; offsets: WasmStateOffsets }
  | {
      kind: 'buffers';
      w2: SharedArrayBuffer;
      b2: SharedArrayBuffer;
      small: SharedArrayBuffer;
      mw2: SharedArrayBuffer;
      mb2: SharedArrayBuffer;
      msmall: SharedArrayBuffer;
      lastStep: SharedArrayBuffer;
    };

function ownSab(a: ArrayBufferView, what: string): SharedArrayBuffer {
  if (
    !(a.buffer instanceof SharedArrayBuffer) ||
    a.byteOffset !== 0 ||
    a.byteLength !== a.buffer.byteLength
  ) {
    throw new Error(`${what} needs a PruningNet created (or loaded) with { shared: true }`);
  }
  return a.buffer;
}

/** The handle of a shared state (throws when the state is not shareable). */
export function shareState(st: PruningNetState, what = 'worker threads'): SharedStateHandle {
  if (st.wasm) return { kind: 'wasm', memory: st.wasm.memory, offsets: st.wasm.offsets };
  return {
    kind: 'buffers',
    w2: ownSab(st.params.w2, what),
    b2: ownSab(st.params.b2, what),
    small: ownSab(st.params.small, what),
    mw2: ownSab(st.momentum.w2, what),
    mb2: ownSab(st.momentum.b2, what),
    msmall: ownSab(st.momentum.small, what),
    lastStep: ownSab(st.lastStep, what),
  };
}

/** Maps a shared state in another thread. */
export function mapSharedState(h: SharedStateHandle, layout: PruningNetLayout): PruningNetState {
  if (h.kind === 'wasm') return stateViews(h.memory, layout, h.offsets);
  return {
    params: {
      w2: new Float32Array(h.w2),
      b2: new Float32Array(h.b2),
      small: new Float32Array(h.small),
    },
    momentum: {
      w2: new Float32Array(h.mw2),
      b2: new Float32Array(h.mb2),
      small: new Float32Array(h.msmall),
    },
    lastStep: new Int32Array(h.lastStep),
  };
}
