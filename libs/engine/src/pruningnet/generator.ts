/**
 * The weight generators' maths as loops over the parameter arrays (no tensor library):
 * generating a candidate's cropped weights, and the generators' backward pass fused with
 * the SGD-momentum update of exactly the rows the crop touched.
 *
 * The second FC's gradient is rank-1 (`g_row * h`) and non-zero only in the cropped rows,
 * so a step reads and writes ~`crop * hidden` parameters, not all of them. Rows a step
 * does not touch would, under dense SGD with momentum, still move (`v <- mu v`,
 * `p <- p - lr v`); that is applied exactly, in closed form, when a row is next touched
 * (catch-up) or when `flushRows` brings every row up to date.
 */
import { type Encoding, scaleOf, widthOf } from '@metaprune/core';
import type { FcLayout, GenLayout, PruningNetLayout } from './layout.js';
import type { PruningNetState } from './params.js';
import type { GenKernels } from './wasm-gen.js';

/** Beyond this many skipped steps momentum (0.9^512 ~ 4e-24) has vanished: cap. */
export const CATCH_UP_MAX = 512;

export interface OptimConfig {
  momentum: number;
  /** Learning rate of global step `s` (0-based). */
  lrAt(step: number): number;
  /** The classifier's learning rate relative to the generators' (default 1). */
  classifierLrScale?: number;
}

/**
 * Closed-form momentum catch-up tables for bringing a row last updated at step `u` up to
 * step `t - 1`, for d = t - 1 - u skipped steps:
 *   v <- mu^d v,  p <- p - F[d] v,  F[d] = sum_{j=1..d} lr(u + j) mu^j.
 */
export class CatchUp {
  readonly F = new Float64Array(CATCH_UP_MAX + 1);
  readonly M = new Float64Array(CATCH_UP_MAX + 1);
  private preparedFor = Number.NaN;

  constructor(readonly optim: OptimConfig) {}

  /** Tables for catching rows up to step t - 1 (before the update of step t). */
  prepare(t: number): this {
    if (this.preparedFor === t) return this;
    const mu = this.optim.momentum;
    this.F[0] = 0;
    this.M[0] = 1;
    for (let d = 0; d < CATCH_UP_MAX; d++) {
      const s = t - 1 - d; // the earliest skipped step for d + 1 skipped steps
      const lr = s >= 0 ? this.optim.lrAt(s) : 0;
      this.F[d + 1] = mu * (lr + (this.F[d] as number));
      this.M[d + 1] = mu * (this.M[d] as number);
    }
    this.preparedFor = t;
    return this;
  }
}

/**
 * The generator input of a layer: the scales of `layer.code` (scale 1 for fixed widths;
 * the constant 1 without weight prediction, whatever the encoding).
 */
export function layerCode(g: GenLayout, enc: Encoding, out: Float64Array): Float64Array {
  const code = g.layer.code;
  if (g.codeFree || code.length === 0) {
    out[0] = 1;
    return out;
  }
  for (let k = 0; k < code.length; k++) out[k] = scaleOf(code[k] ?? null, enc);
  return out;
}

/** Cropped sizes of a layer under an encoding (depthwise: cout = 1 per channel). */
export function cropOf(g: GenLayout, enc: Encoding): { cin: number; cout: number } {
  const cin = widthOf(g.layer.in, enc);
  const cout = g.kind === 'depthwise' ? 1 : widthOf(g.layer.out, enc);
  return { cin, cout };
}

/** Elements of a layer's crop. */
export function cropSize(g: GenLayout, cin: number, cout: number): number {
  return cin * cout * g.kk;
}

/** pre = code . w1 + b1, h = relu(pre). */
export function hiddenForward(
  g: GenLayout,
  small: Float32Array,
  code: Float64Array,
  pre: Float32Array,
  h: Float32Array,
): void {
  const H = g.hidden;
  for (let j = 0; j < H; j++) {
    let s = small[g.b1Off + j] as number;
    for (let k = 0; k < g.codeLen; k++)
      s += (code[k] as number) * (small[g.w1Off + k * H + j] as number);
    pre[j] = s;
    h[j] = Math.max(s, 0);
  }
}

/** Brings `rows` rows from `first` up to step t - 1 (tables prepared for t). */
function catchUpRows(
  st: PruningNetState,
  H: number,
  rowOff: number,
  w2Off: number,
  first: number,
  rows: number,
  t: number,
  cu: CatchUp,
): void {
  const { w2, b2 } = st.params;
  const mw2 = st.momentum.w2;
  const mb2 = st.momentum.b2;
  const last = st.lastStep;
  const target = t - 1;
  for (let i = 0; i < rows; i++) {
    const r = rowOff + first + i;
    const u = last[r] as number;
    if (u >= target) continue;
    let d = target - u;
    if (d > CATCH_UP_MAX) d = CATCH_UP_MAX;
    const F = cu.F[d] as number;
    const M = cu.M[d] as number;
    const o = w2Off + (first + i) * H;
    for (let j = 0; j < H; j++) {
      const v = mw2[o + j] as number;
      w2[o + j] = (w2[o + j] as number) - F * v;
      mw2[o + j] = M * v;
    }
    const vb = mb2[r] as number;
    b2[r] = (b2[r] as number) - F * vb;
    mb2[r] = M * vb;
    last[r] = target;
  }
}

/**
 * Writes a layer's cropped generated weight (tfjs filter layout) into `out`. With
 * `catchUp` (training, step t), rows are first brought up to date.
 */
export function generateCrop(
  g: GenLayout,
  st: PruningNetState,
  h: Float32Array,
  cin: number,
  cout: number,
  out: Float32Array,
  catchUp?: { t: number; cu: CatchUp },
  kernels?: GenKernels | null,
): void {
  const H = g.hidden;
  const KK = g.kk;
  if (kernels) {
    if (catchUp) kernels.catchUp(st, g, cin, cout * KK, catchUp.t, catchUp.cu.F, catchUp.cu.M);
    kernels.generate(st, g, h, cin, cout, out);
    return;
  }
  const { w2, b2 } = st.params;
  const blockRows = cout * KK;
  const stride = g.coutMax * KK; // rows between consecutive ci (depthwise: KK)
  for (let ci = 0; ci < cin; ci++) {
    const first = ci * stride;
    if (catchUp) catchUpRows(st, H, g.rowOff, g.w2Off, first, blockRows, catchUp.t, catchUp.cu);
    for (let j = 0; j < blockRows; j++) {
      const r = g.rowOff + first + j;
      const o = g.w2Off + (first + j) * H;
      let s = b2[r] as number;
      for (let q = 0; q < H; q++) s += (w2[o + q] as number) * (h[q] as number);
      const co = (j / KK) | 0;
      const kk = j - co * KK;
      out[(kk * cin + ci) * cout + co] = s;
    }
  }
}

export interface UpdateArgs {
  t: number;
  lr: number;
  momentum: number;
  /** Multiplies `lr` for the classifier (default 1). */
  classifierLrScale?: number;
}

/**
 * Backward through one generator for the gradient of its cropped weight (the weighted sum
 * of `grads[i] * weights[i]`, e.g. the shards of a data-parallel step), fused with the
 * momentum-SGD update of the touched rows and of the generator's first FC.
 * Rows must already be current to step t - 1 (generateCrop with catchUp does that).
 */
export function backwardUpdate(
  g: GenLayout,
  st: PruningNetState,
  code: Float64Array,
  pre: Float32Array,
  h: Float32Array,
  cin: number,
  cout: number,
  grads: readonly Float32Array[],
  weights: readonly number[],
  u: UpdateArgs,
  gh: Float64Array,
  kernels?: GenKernels | null,
): void {
  const KK = g.kk;
  const { small } = st.params;
  const msmall = st.momentum.small;
  const { lr, momentum: mu, t } = u;
  if (kernels) {
    let gs = grads;
    let ws = weights;
    if (grads.length > 2) {
      // The kernel sums two shards; fold any others first.
      const size = cin * cout * KK;
      const sum = new Float32Array(size);
      for (let s = 0; s < grads.length; s++) {
        const a = weights[s] as number;
        const gr = grads[s] as Float32Array;
        for (let i = 0; i < size; i++) sum[i] = (sum[i] as number) + a * (gr[i] as number);
      }
      gs = [sum];
      ws = [1];
    }
    kernels.update(st, g, h, cin, cout, gs, ws, lr, mu, t, gh);
  } else {
    rowsBackwardUpdate(g, st, h, cin, cout, grads, weights, u, gh);
  }
  firstLayerUpdate(g, code, pre, gh, lr, mu, small, msmall);
}

/** The touched rows' part of backwardUpdate, as TypeScript loops. */
function rowsBackwardUpdate(
  g: GenLayout,
  st: PruningNetState,
  h: Float32Array,
  cin: number,
  cout: number,
  grads: readonly Float32Array[],
  weights: readonly number[],
  u: UpdateArgs,
  gh: Float64Array,
): void {
  const H = g.hidden;
  const KK = g.kk;
  const { w2, b2 } = st.params;
  const mw2 = st.momentum.w2;
  const mb2 = st.momentum.b2;
  const last = st.lastStep;
  const { lr, momentum: mu, t } = u;
  const g0 = grads[0] as Float32Array;
  const a0 = weights[0] as number;
  const g1 = grads.length > 1 ? (grads[1] as Float32Array) : null;
  const a1 = grads.length > 1 ? (weights[1] as number) : 0;
  gh.fill(0, 0, H);
  const blockRows = cout * KK;
  const stride = g.coutMax * KK;
  for (let ci = 0; ci < cin; ci++) {
    const first = ci * stride;
    for (let j = 0; j < blockRows; j++) {
      const r = g.rowOff + first + j;
      const co = (j / KK) | 0;
      const kk = j - co * KK;
      const idx = (kk * cin + ci) * cout + co;
      const gr = g1
        ? a0 * (g0[idx] as number) + a1 * (g1[idx] as number)
        : a0 * (g0[idx] as number);
      const o = g.w2Off + (first + j) * H;
      for (let q = 0; q < H; q++) {
        const w = w2[o + q] as number;
        gh[q] = (gh[q] as number) + gr * w;
        const v = mu * (mw2[o + q] as number) + gr * (h[q] as number);
        mw2[o + q] = v;
        w2[o + q] = w - lr * v;
      }
      const vb = mu * (mb2[r] as number) + gr;
      mb2[r] = vb;
      b2[r] = (b2[r] as number) - lr * vb;
      last[r] = t;
    }
  }
}

/** First FC: d pre = gh * relu'(pre); dw1[k][j] = code[k] * dpre[j]; db1 = dpre. */
function firstLayerUpdate(
  g: GenLayout,
  code: Float64Array,
  pre: Float32Array,
  gh: Float64Array,
  lr: number,
  mu: number,
  small: Float32Array,
  msmall: Float32Array,
): void {
  const H = g.hidden;
  for (let j = 0; j < H; j++) {
    const dp = (pre[j] as number) > 0 ? (gh[j] as number) : 0;
    for (let k = 0; k < g.codeLen; k++) {
      const i = g.w1Off + k * H + j;
      const v = mu * (msmall[i] as number) + (code[k] as number) * dp;
      msmall[i] = v;
      small[i] = (small[i] as number) - lr * v;
    }
    const i = g.b1Off + j;
    const v = mu * (msmall[i] as number) + dp;
    msmall[i] = v;
    small[i] = (small[i] as number) - lr * v;
  }
}

/** The classifier's cropped weight [cin, cout] and bias (copies out of `small`). */
export function fcCrop(
  f: FcLayout,
  small: Float32Array,
  cin: number,
): { w: Float32Array; b: Float32Array } {
  return {
    w: small.slice(f.wOff, f.wOff + cin * f.cout),
    b: small.slice(f.bOff, f.bOff + f.cout),
  };
}

/** Dense momentum-SGD update of the classifier (rows >= cin get a zero gradient). */
export function fcUpdate(
  f: FcLayout,
  st: PruningNetState,
  cin: number,
  gradsW: readonly Float32Array[],
  gradsB: readonly Float32Array[],
  weights: readonly number[],
  u: UpdateArgs,
): void {
  const { small } = st.params;
  const msmall = st.momentum.small;
  const mu = u.momentum;
  const lr = u.lr * (u.classifierLrScale ?? 1);
  const nW = f.cinMax * f.cout;
  const inCrop = cin * f.cout;
  for (let i = 0; i < nW; i++) {
    let gr = 0;
    if (i < inCrop)
      for (let s = 0; s < gradsW.length; s++)
        gr += (weights[s] as number) * ((gradsW[s] as Float32Array)[i] as number);
    const v = mu * (msmall[f.wOff + i] as number) + gr;
    msmall[f.wOff + i] = v;
    small[f.wOff + i] = (small[f.wOff + i] as number) - lr * v;
  }
  for (let i = 0; i < f.cout; i++) {
    let gr = 0;
    for (let s = 0; s < gradsB.length; s++)
      gr += (weights[s] as number) * ((gradsB[s] as Float32Array)[i] as number);
    const v = mu * (msmall[f.bOff + i] as number) + gr;
    msmall[f.bOff + i] = v;
    small[f.bOff + i] = (small[f.bOff + i] as number) - lr * v;
  }
}

/**
 * Brings every row of the given generators (default all) up to step t - 1, so that
 * parameters equal those of dense momentum SGD after step t - 1.
 */
export function flushRows(
  layout: PruningNetLayout,
  st: PruningNetState,
  t: number,
  cu: CatchUp,
  only?: readonly number[],
  kernels?: GenKernels | null,
): void {
  cu.prepare(t);
  for (const g of layout.gens) {
    if (g == null) continue;
    if (only && !only.includes(g.index)) continue;
    if (kernels) kernels.catchUp(st, g, g.cinMax, g.coutMax * g.kk, t, cu.F, cu.M);
    else catchUpRows(st, g.hidden, g.rowOff, g.w2Off, 0, g.rows, t, cu);
  }
}
