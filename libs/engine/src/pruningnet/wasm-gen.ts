/**
 * SIMD WebAssembly kernels for the weight generators (generation, momentum catch-up and the
 * fused backward + update of the touched rows), running directly on the PruningNet's
 * parameter memory: when the parameters fit, they are allocated in one shared
 * WebAssembly.Memory (`allocWasmState`), which worker threads receive and map identically.
 *
 * Each thread evaluating kernels on a memory claims a scratch slot in it (the generator
 * input, the gradient of the hidden layer, catch-up tables, one crop and two crop
 * gradients), recorded in the memory's header so that threads never share one; a thread
 * that cannot get a slot (or a platform without wasm SIMD) uses the TypeScript loops.
 *
 * Memory layout: a 4 KiB header (magic, bump pointer, slot table), the state arrays, then
 * scratch slots allocated on demand (the memory grows; shared memories never detach).
 */
import { buildModule, F32, Fn, I32, op, V128 } from '../kernels/wasm-asm.js';
import type { GenLayout, PruningNetLayout } from './layout.js';
import type { ParamArrays, PruningNetState, WasmMemory, WasmStateOffsets } from './state.js';

export type { WasmMemory, WasmStateOffsets } from './state.js';

const PAGE = 65536;
const MAX_PAGES = 65536;
const HEADER = 4096;
const MAGIC = 0x6d707267;
const MAX_SLOTS = 64;
/** Header int32 indices. */
const H_MAGIC = 0;
const H_BUMP = 1;
const H_SLOT_BYTES = 2;
const H_SLOTS = 4; // owner flag at H_SLOTS + 2k, byte offset at H_SLOTS + 2k + 1

/** Entries of the catch-up tables (must cover CATCH_UP_MAX + 1). */
export const TABLE_SIZE = 513;

// ----------------------------------------------------------------------------- module

const O = {
  i32Load: [0x28, 2, 0],
  i32Store: [0x36, 2, 0],
  i32LtS: 0x48,
  i32GtS: 0x4a,
  i32Ne: 0x47,
  i32DivU: 0x6e,
  select: 0x1b,
  f32Reinterpret: 0xbe,
} as const;
const S = { splat: 0x13, lane: 0x1f, add: 0xe4, sub: 0xe5, mul: 0xe6 } as const;

/** Pushes the f32 horizontal sum of a v128 local. */
function hsum(f: Fn, v: number): void {
  f.get(v).simd(S.lane).raw(0);
  f.get(v).simd(S.lane).raw(1).op(op.f32Add);
  f.get(v).simd(S.lane).raw(2).op(op.f32Add);
  f.get(v).simd(S.lane).raw(3).op(op.f32Add);
}

/**
 * gen(w2, b2, h, H, cin, cout, KK, stride, out):
 *   out[(kk*cin + ci)*cout + co] = b2[r] + w2[r, :] . h, r = ci*stride + co*KK + kk.
 */
function genFn(): Fn {
  const f = new Fn(9);
  const [w2, b2, h, H, cin, cout, KK, stride, out] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;
  const Hb = f.local(I32);
  const blk = f.local(I32);
  const ci = f.local(I32);
  const j = f.local(I32);
  const r = f.local(I32);
  const pw = f.local(I32);
  const q = f.local(I32);
  const co = f.local(I32);
  const acc = f.local(V128);
  f.get(H).i32(2).op(op.i32Shl).set(Hb);
  f.get(cout).get(KK).op(op.i32Mul).set(blk);
  f.for(
    ci,
    () => f.i32(0),
    () => f.get(cin),
    1,
    () => {
      f.for(
        j,
        () => f.i32(0),
        () => f.get(blk),
        1,
        () => {
          f.get(ci).get(stride).op(op.i32Mul).get(j).op(op.i32Add).set(r);
          f.get(w2).get(r).get(Hb).op(op.i32Mul).op(op.i32Add).set(pw);
          f.f32c(0).simd(S.splat).set(acc);
          f.i32(0).set(q);
          f.whileBelow(q, Hb, () => {
            f.get(acc);
            f.get(pw).get(q).op(op.i32Add).v128Load();
            f.get(h).get(q).op(op.i32Add).v128Load();
            f.simd(S.mul).simd(S.add).set(acc);
            f.inc(q, 16);
          });
          f.get(j).get(KK).op(O.i32DivU).set(co);
          // address: out + ((kk*cin + ci)*cout + co)*4, kk = j - co*KK
          f.get(out);
          f.get(j).get(co).get(KK).op(op.i32Mul).op(op.i32Sub);
          f.get(cin).op(op.i32Mul).get(ci).op(op.i32Add);
          f.get(cout).op(op.i32Mul).get(co).op(op.i32Add);
          f.i32(2).op(op.i32Shl).op(op.i32Add);
          f.get(b2).get(r).i32(2).op(op.i32Shl).op(op.i32Add).f32Load();
          hsum(f, acc);
          f.op(op.f32Add);
          f.f32Store();
        },
      );
    },
  );
  return f;
}

/**
 * catchup(w2, b2, mw2, mb2, last, H, cin, blk, stride, target, Ftab, Mtab, Dmax): rows
 * r = ci*stride + j (j < blk) with last[r] < target: d = min(target - last[r], Dmax),
 *   w2[r,:] -= F[d] mw2[r,:]; mw2[r,:] *= M[d]; same for b2/mb2; last[r] = target.
 */
function catchupFn(): Fn {
  const f = new Fn(13);
  const [w2, b2, mw2, mb2, last, H, cin, blk, stride, target, Ftab, Mtab, Dmax] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
  ] as const;
  const Hb = f.local(I32);
  const ci = f.local(I32);
  const j = f.local(I32);
  const r = f.local(I32);
  const pl = f.local(I32);
  const d = f.local(I32);
  const pw = f.local(I32);
  const pm = f.local(I32);
  const q = f.local(I32);
  const Fs = f.local(F32);
  const Ms = f.local(F32);
  const Fv = f.local(V128);
  const Mv = f.local(V128);
  const v = f.local(V128);
  const pb = f.local(I32);
  const pmb = f.local(I32);
  f.get(H).i32(2).op(op.i32Shl).set(Hb);
  f.for(
    ci,
    () => f.i32(0),
    () => f.get(cin),
    1,
    () => {
      f.for(
        j,
        () => f.i32(0),
        () => f.get(blk),
        1,
        () => {
          f.get(ci).get(stride).op(op.i32Mul).get(j).op(op.i32Add).set(r);
          f.get(last).get(r).i32(2).op(op.i32Shl).op(op.i32Add).set(pl);
          f.get(pl)
            .raw(...O.i32Load)
            .get(target)
            .op(O.i32LtS);
          f.if(() => {
            f.get(target)
              .get(pl)
              .raw(...O.i32Load)
              .op(op.i32Sub)
              .set(d);
            // d = d > Dmax ? Dmax : d
            f.get(Dmax).get(d).get(d).get(Dmax).op(O.i32GtS).op(O.select).set(d);
            f.get(Ftab).get(d).i32(2).op(op.i32Shl).op(op.i32Add).f32Load().tee(Fs);
            f.simd(S.splat).set(Fv);
            f.get(Mtab).get(d).i32(2).op(op.i32Shl).op(op.i32Add).f32Load().tee(Ms);
            f.simd(S.splat).set(Mv);
            f.get(w2).get(r).get(Hb).op(op.i32Mul).op(op.i32Add).set(pw);
            f.get(mw2).get(r).get(Hb).op(op.i32Mul).op(op.i32Add).set(pm);
            f.i32(0).set(q);
            f.whileBelow(q, Hb, () => {
              f.get(pm).get(q).op(op.i32Add).v128Load().set(v);
              f.get(pw).get(q).op(op.i32Add);
              f.get(pw).get(q).op(op.i32Add).v128Load();
              f.get(Fv).get(v).simd(S.mul).simd(S.sub);
              f.v128Store();
              f.get(pm).get(q).op(op.i32Add);
              f.get(Mv).get(v).simd(S.mul);
              f.v128Store();
              f.inc(q, 16);
            });
            f.get(b2).get(r).i32(2).op(op.i32Shl).op(op.i32Add).set(pb);
            f.get(mb2).get(r).i32(2).op(op.i32Shl).op(op.i32Add).set(pmb);
            f.get(pb);
            f.get(pb).f32Load().get(Fs).get(pmb).f32Load().op(op.f32Mul).op(op.f32Sub);
            f.f32Store();
            f.get(pmb);
            f.get(Ms).get(pmb).f32Load().op(op.f32Mul);
            f.f32Store();
            f.get(pl)
              .get(target)
              .raw(...O.i32Store);
          });
        },
      );
    },
  );
  return f;
}

/**
 * update(w2, b2, mw2, mb2, last, h, gh, H, cin, cout, KK, stride, g0, a0, g1, a1, lr, mu, t):
 * for the crop's rows, gr = a0 g0[idx] + a1 g1[idx] (g1 = 0: absent; a*, lr, mu as f32
 * bits): gh += gr w2[r,:]; v = mu mw2[r,:] + gr h; mw2[r,:] = v; w2[r,:] -= lr v; the
 * same for b2 with input 1; last[r] = t.
 */
function updateFn(): Fn {
  const f = new Fn(19);
  const [w2, b2, mw2, mb2, last, h, gh, H, cin, cout, KK, stride, g0, a0, g1, a1, lr, mu, t] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
  ] as const;
  const Hb = f.local(I32);
  const blk = f.local(I32);
  const ci = f.local(I32);
  const j = f.local(I32);
  const r = f.local(I32);
  const co = f.local(I32);
  const idx = f.local(I32);
  const pw = f.local(I32);
  const pm = f.local(I32);
  const q = f.local(I32);
  const pb = f.local(I32);
  const pmb = f.local(I32);
  const a0s = f.local(F32);
  const a1s = f.local(F32);
  const lrs = f.local(F32);
  const mus = f.local(F32);
  const gr = f.local(F32);
  const vb = f.local(F32);
  const grv = f.local(V128);
  const lrv = f.local(V128);
  const muv = f.local(V128);
  const wv = f.local(V128);
  const vv = f.local(V128);
  f.get(H).i32(2).op(op.i32Shl).set(Hb);
  f.get(cout).get(KK).op(op.i32Mul).set(blk);
  f.get(a0).op(O.f32Reinterpret).set(a0s);
  f.get(a1).op(O.f32Reinterpret).set(a1s);
  f.get(lr).op(O.f32Reinterpret).tee(lrs).simd(S.splat).set(lrv);
  f.get(mu).op(O.f32Reinterpret).tee(mus).simd(S.splat).set(muv);
  f.for(
    ci,
    () => f.i32(0),
    () => f.get(cin),
    1,
    () => {
      f.for(
        j,
        () => f.i32(0),
        () => f.get(blk),
        1,
        () => {
          f.get(ci).get(stride).op(op.i32Mul).get(j).op(op.i32Add).set(r);
          f.get(j).get(KK).op(O.i32DivU).set(co);
          f.get(j).get(co).get(KK).op(op.i32Mul).op(op.i32Sub);
          f.get(cin).op(op.i32Mul).get(ci).op(op.i32Add);
          f.get(cout).op(op.i32Mul).get(co).op(op.i32Add);
          f.i32(2).op(op.i32Shl).set(idx);
          f.get(a0s).get(g0).get(idx).op(op.i32Add).f32Load().op(op.f32Mul).set(gr);
          f.get(g1).i32(0).op(O.i32Ne);
          f.if(() => {
            f.get(gr).get(a1s).get(g1).get(idx).op(op.i32Add).f32Load().op(op.f32Mul);
            f.op(op.f32Add).set(gr);
          });
          f.get(gr).simd(S.splat).set(grv);
          f.get(w2).get(r).get(Hb).op(op.i32Mul).op(op.i32Add).set(pw);
          f.get(mw2).get(r).get(Hb).op(op.i32Mul).op(op.i32Add).set(pm);
          f.i32(0).set(q);
          f.whileBelow(q, Hb, () => {
            f.get(pw).get(q).op(op.i32Add).v128Load().set(wv);
            // gh += gr * w
            f.get(gh).get(q).op(op.i32Add);
            f.get(gh).get(q).op(op.i32Add).v128Load();
            f.get(grv).get(wv).simd(S.mul).simd(S.add);
            f.v128Store();
            // v = mu * m + gr * h
            f.get(muv).get(pm).get(q).op(op.i32Add).v128Load().simd(S.mul);
            f.get(grv).get(h).get(q).op(op.i32Add).v128Load().simd(S.mul);
            f.simd(S.add).set(vv);
            f.get(pm).get(q).op(op.i32Add).get(vv).v128Store();
            // w -= lr * v
            f.get(pw).get(q).op(op.i32Add);
            f.get(wv).get(lrv).get(vv).simd(S.mul).simd(S.sub);
            f.v128Store();
            f.inc(q, 16);
          });
          f.get(b2).get(r).i32(2).op(op.i32Shl).op(op.i32Add).set(pb);
          f.get(mb2).get(r).i32(2).op(op.i32Shl).op(op.i32Add).set(pmb);
          f.get(mus).get(pmb).f32Load().op(op.f32Mul).get(gr).op(op.f32Add).set(vb);
          f.get(pmb).get(vb).f32Store();
          f.get(pb).get(pb).f32Load().get(lrs).get(vb).op(op.f32Mul).op(op.f32Sub).f32Store();
          f.get(last)
            .get(r)
            .i32(2)
            .op(op.i32Shl)
            .op(op.i32Add)
            .get(t)
            .raw(...O.i32Store);
        },
      );
    },
  );
  return f;
}

let moduleBytes: Uint8Array | undefined;
function genModuleBytes(): Uint8Array {
  moduleBytes ??= buildModule(
    [
      { name: 'gen', fn: genFn() },
      { name: 'catchup', fn: catchupFn() },
      { name: 'update', fn: updateFn() },
    ],
    { maxPages: MAX_PAGES },
  );
  return moduleBytes;
}

interface GenExports {
  gen(...args: number[]): void;
  catchup(...args: number[]): void;
  update(...args: number[]): void;
}

interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}

function wasmApi(): WasmApi | null {
  return ((globalThis as { WebAssembly?: WasmApi }).WebAssembly ?? null) as WasmApi | null;
}

let enabled = process.env['METAPRUNE_GEN_KERNELS'] !== '0';

/** Turns the generator kernels on or off (off: TypeScript loops); for tests and benches. */
export function useGenKernels(on: boolean): void {
  enabled = on;
}

let supported: boolean | undefined;
function kernelsSupported(): boolean {
  if (supported !== undefined) return supported;
  const api = wasmApi();
  try {
    supported = api?.validate(genModuleBytes()) ?? false;
  } catch {
    supported = false;
  }
  return supported;
}

// ----------------------------------------------------------------------------- memory

const align16 = (n: number) => Math.ceil(n / 16) * 16;

function stateOffsets(layout: PruningNetLayout): { offsets: WasmStateOffsets; end: number } {
  let at = HEADER;
  const take = (floats: number) => {
    const off = at;
    at = align16(at + floats * 4);
    return off;
  };
  const offsets = {
    w2: take(layout.w2Size),
    b2: take(layout.totalRows),
    small: take(layout.smallSize),
    mw2: take(layout.w2Size),
    mb2: take(layout.totalRows),
    msmall: take(layout.smallSize),
    lastStep: take(layout.totalRows),
  };
  return { offsets, end: at };
}

/** Bytes of a thread's scratch slot for a layout. */
function slotBytes(layout: PruningNetLayout): number {
  const maxH = Math.max(4, ...layout.gens.map((g) => g?.hidden ?? 0));
  return align16(4 * (2 * align16(maxH) + 2 * TABLE_SIZE + 3 * align16(layout.maxRows) + 64));
}

/** Maps the state arrays of a wasm state memory (in any thread). */
export function stateViews(
  memory: WasmMemory,
  layout: PruningNetLayout,
  offsets: WasmStateOffsets,
): PruningNetState {
  const buf = memory.buffer as ArrayBuffer;
  const f = (off: number, n: number) => new Float32Array(buf, off, n);
  const params: ParamArrays = {
    w2: f(offsets.w2, layout.w2Size),
    b2: f(offsets.b2, layout.totalRows),
    small: f(offsets.small, layout.smallSize),
  };
  const momentum: ParamArrays = {
    w2: f(offsets.mw2, layout.w2Size),
    b2: f(offsets.mb2, layout.totalRows),
    small: f(offsets.msmall, layout.smallSize),
  };
  return {
    params,
    momentum,
    lastStep: new Int32Array(buf, offsets.lastStep, layout.totalRows),
    wasm: { memory, offsets },
  };
}

/**
 * Allocates a PruningNet's state in a shared WebAssembly.Memory, or returns null when wasm
 * is unavailable or the state would not fit in 4 GiB (callers then use plain arrays).
 */
export function allocWasmState(layout: PruningNetLayout): PruningNetState | null {
  const api = wasmApi();
  if (!enabled || api == null || !kernelsSupported()) return null;
  const { offsets, end } = stateOffsets(layout);
  const reserve = end + 4 * slotBytes(layout);
  if (reserve > (MAX_PAGES - 16) * PAGE) return null;
  let memory: WasmMemory;
  try {
    memory = new api.Memory({ initial: Math.ceil(end / PAGE), maximum: MAX_PAGES, shared: true });
  } catch {
    return null;
  }
  const header = new Int32Array(memory.buffer as ArrayBuffer, 0, HEADER / 4);
  header[H_MAGIC] = MAGIC;
  header[H_BUMP] = align16(Math.ceil(end / PAGE) * PAGE);
  header[H_SLOT_BYTES] = slotBytes(layout);
  return stateViews(memory, layout, offsets);
}

// ----------------------------------------------------------------------------- kernels

interface Slot {
  index: number;
  base: number;
  h: Float32Array;
  gh: Float32Array;
  F: Float32Array;
  M: Float32Array;
  out: Float32Array;
  g0: Float32Array;
  g1: Float32Array;
  tablesFor: number;
  addr: { h: number; gh: number; F: number; M: number; out: number; g0: number; g1: number };
}

/** The generator kernels of one thread on one state memory. */
export class GenKernels {
  private constructor(
    private readonly ex: GenExports,
    private readonly slot: Slot,
    readonly memory: WasmMemory,
  ) {}

  /** Kernels for a state (null: not in a wasm memory, disabled, or no free slot). */
  static for(st: PruningNetState, layout: PruningNetLayout): GenKernels | null {
    if (!enabled || !st.wasm) return null;
    const memory = st.wasm.memory;
    let k = cache.get(memory);
    if (k !== undefined) return k;
    k = GenKernels.create(memory, layout);
    cache.set(memory, k);
    return k;
  }

  private static create(memory: WasmMemory, layout: PruningNetLayout): GenKernels | null {
    const api = wasmApi();
    if (api == null || !kernelsSupported()) return null;
    const slot = claimSlot(memory, layout);
    if (!slot) return null;
    const ex = new api.Instance(new api.Module(genModuleBytes()), { env: { memory } })
      .exports as GenExports;
    return new GenKernels(ex, slot, memory);
  }

  /** Index of this thread's scratch slot (to release it when the thread is gone). */
  get slotIndex(): number {
    return this.slot.index;
  }

  private setTables(F: Float64Array, M: Float64Array, t: number): void {
    if (this.slot.tablesFor === t) return;
    const n = Math.min(TABLE_SIZE, F.length);
    for (let d = 0; d < n; d++) {
      this.slot.F[d] = F[d] as number;
      this.slot.M[d] = M[d] as number;
    }
    this.slot.tablesFor = t;
  }

  /** Brings the rows of ci < cin, j < blk up to step t - 1. */
  catchUp(
    st: PruningNetState,
    g: GenLayout,
    cin: number,
    blk: number,
    t: number,
    F: Float64Array,
    M: Float64Array,
  ): void {
    this.setTables(F, M, t);
    const a = addresses(st, g);
    this.ex.catchup(
      a.w2,
      a.b2,
      a.mw2,
      a.mb2,
      a.last,
      g.hidden,
      cin,
      blk,
      g.coutMax * g.kk,
      t - 1,
      this.slot.addr.F,
      this.slot.addr.M,
      Math.min(TABLE_SIZE, F.length) - 1,
    );
  }

  /** Generates the crop (cin x cout x KK rows) into `out` (tfjs filter layout). */
  generate(
    st: PruningNetState,
    g: GenLayout,
    h: Float32Array,
    cin: number,
    cout: number,
    out: Float32Array,
  ): void {
    const s = this.slot;
    s.h.set(h.subarray(0, g.hidden));
    const a = addresses(st, g);
    this.ex.gen(a.w2, a.b2, s.addr.h, g.hidden, cin, cout, g.kk, g.coutMax * g.kk, s.addr.out);
    const size = cin * cout * g.kk;
    out.set(s.out.subarray(0, size));
  }

  /**
   * Fused backward + momentum update of the crop's rows; returns the gradient w.r.t. the
   * generator's hidden layer in `gh` (length hidden).
   */
  update(
    st: PruningNetState,
    g: GenLayout,
    h: Float32Array,
    cin: number,
    cout: number,
    grads: readonly Float32Array[],
    weights: readonly number[],
    lr: number,
    mu: number,
    t: number,
    gh: Float64Array,
  ): void {
    const s = this.slot;
    const size = cin * cout * g.kk;
    s.h.set(h.subarray(0, g.hidden));
    s.gh.fill(0, 0, g.hidden);
    s.g0.set((grads[0] as Float32Array).subarray(0, size));
    const two = grads.length > 1;
    if (two) s.g1.set((grads[1] as Float32Array).subarray(0, size));
    const a = addresses(st, g);
    this.ex.update(
      a.w2,
      a.b2,
      a.mw2,
      a.mb2,
      a.last,
      s.addr.h,
      s.addr.gh,
      g.hidden,
      cin,
      cout,
      g.kk,
      g.coutMax * g.kk,
      s.addr.g0,
      f32Bits(weights[0] as number),
      two ? s.addr.g1 : 0,
      f32Bits(two ? (weights[1] as number) : 0),
      f32Bits(lr),
      f32Bits(mu),
      t,
    );
    for (let q = 0; q < g.hidden; q++) gh[q] = s.gh[q] as number;
  }
}

const cache = new WeakMap<object, GenKernels | null>();

const bitsI = new Int32Array(1);
const bitsF = new Float32Array(bitsI.buffer);
function f32Bits(v: number): number {
  bitsF[0] = v;
  return bitsI[0] as number;
}

function addresses(st: PruningNetState, g: GenLayout) {
  return {
    w2: st.params.w2.byteOffset + g.w2Off * 4,
    b2: st.params.b2.byteOffset + g.rowOff * 4,
    mw2: st.momentum.w2.byteOffset + g.w2Off * 4,
    mb2: st.momentum.b2.byteOffset + g.rowOff * 4,
    last: st.lastStep.byteOffset + g.rowOff * 4,
  };
}

/** Claims a free scratch slot of a state memory (allocating it on first use). */
function claimSlot(memory: WasmMemory, layout: PruningNetLayout): Slot | null {
  const header = new Int32Array(memory.buffer as ArrayBuffer, 0, HEADER / 4);
  if (Atomics.load(header, H_MAGIC) !== MAGIC) return null;
  const bytes = Atomics.load(header, H_SLOT_BYTES);
  if (bytes < slotBytes(layout)) return null;
  for (let k = 0; k < MAX_SLOTS; k++) {
    if (Atomics.compareExchange(header, H_SLOTS + 2 * k, 0, 1) !== 0) continue;
    let base = Atomics.load(header, H_SLOTS + 2 * k + 1) >>> 0;
    if (base === 0) {
      base = Atomics.add(header, H_BUMP, bytes) >>> 0;
      const need = base + bytes;
      try {
        while (memory.buffer.byteLength < need) {
          memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
        }
      } catch {
        Atomics.store(header, H_SLOTS + 2 * k, 0);
        return null;
      }
      Atomics.store(header, H_SLOTS + 2 * k + 1, base | 0);
    }
    return makeSlot(memory, k, base, layout);
  }
  return null;
}

function makeSlot(memory: WasmMemory, index: number, base: number, layout: PruningNetLayout): Slot {
  const buf = memory.buffer as ArrayBuffer;
  const maxH = align16(Math.max(4, ...layout.gens.map((g) => g?.hidden ?? 0)));
  const rows = align16(layout.maxRows);
  let at = base;
  const take = (n: number) => {
    const off = at;
    at += align16(n * 4);
    return off;
  };
  const addr = {
    h: take(maxH),
    gh: take(maxH),
    F: take(TABLE_SIZE),
    M: take(TABLE_SIZE),
    out: take(rows),
    g0: take(rows),
    g1: take(rows),
  };
  return {
    index,
    base,
    tablesFor: Number.NaN,
    addr,
    h: new Float32Array(buf, addr.h, maxH),
    gh: new Float32Array(buf, addr.gh, maxH),
    F: new Float32Array(buf, addr.F, TABLE_SIZE),
    M: new Float32Array(buf, addr.M, TABLE_SIZE),
    out: new Float32Array(buf, addr.out, rows),
    g0: new Float32Array(buf, addr.g0, rows),
    g1: new Float32Array(buf, addr.g1, rows),
  };
}

/** Frees a scratch slot claimed by a thread that has ended. */
export function releaseSlot(memory: WasmMemory, index: number): void {
  if (index < 0 || index >= MAX_SLOTS) return;
  const header = new Int32Array(memory.buffer as ArrayBuffer, 0, HEADER / 4);
  Atomics.store(header, H_SLOTS + 2 * index, 0);
}
