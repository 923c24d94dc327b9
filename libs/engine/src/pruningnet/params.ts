/**
 * PruningNet parameters and optimiser state as plain float arrays (optionally in
 * SharedArrayBuffers, so worker threads read and update them in place), initialised like
 * PyTorch's nn.Linear (uniform in +-1/sqrt(fan_in) for weights and biases).
 */
import { Rng } from '@metaprune/data';
import type { PruningNetLayout } from './layout.js';

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
}

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

export function allocState(layout: PruningNetLayout, shared: boolean): PruningNetState {
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
