/**
 * SIMD wasm kernels that run directly on the tfjs wasm backend's heap (the module imports the
 * backend's WebAssembly.Memory), built at start by the tiny assembler in wasm-asm.ts:
 *
 * - dwFilterGrad: depthwise filter gradient, f32x4 multiply-accumulate over channels,
 *   per-image partial sums folded into float64 totals.
 * - stats / sums2: per-channel sums for batch norm (forward: sum and sum of squares of
 *   x - shift; backward: sum dy and sum dy*y), folded into float64 every 64 rows.
 * - affine1 / affine2: out = x*a + b and out = u*a + v*b + k with per-channel a, b, k.
 *
 * Falls back (returns null / false) when the memory is not reachable or SIMD is missing.
 */
import type { backend_util, TensorInfo } from '@tensorflow/tfjs';
import { bnAffineCoefficients, bnBackwardCoefficients } from './bn-math.js';
import { offsetOf, type WasmBackendLike } from './heap.js';
import { buildModule, F32, Fn, I32, op, simdOp, V128 } from './wasm-asm.js';

export interface SimdKernels {
  depthwiseFilterGrad(
    backend: WasmBackendLike,
    x: TensorInfo,
    dy: TensorInfo,
    out: TensorInfo,
    info: backend_util.Conv2DInfo,
  ): boolean;
  /** out[M, N] = sum_p a[p, M] * b[p, N] for row-major a [P, M], b [P, N]. */
  gemmTN(backend: WasmBackendLike, a: TensorInfo, b: TensorInfo, out: TensorInfo): boolean;
  bnForward(
    backend: WasmBackendLike,
    x: TensorInfo,
    y: TensorInfo,
    mean: TensorInfo,
    variance: TensorInfo,
    eps: number,
  ): boolean;
  bnBackward(
    backend: WasmBackendLike,
    dy: TensorInfo,
    y: TensorInfo,
    variance: TensorInfo,
    dmean: TensorInfo,
    dvar: TensorInfo,
    dx: TensorInfo,
    eps: number,
  ): boolean;
  /** out = x * gamma + beta per channel (last axis). */
  scaleShift(
    backend: WasmBackendLike,
    x: TensorInfo,
    gamma: TensorInfo,
    beta: TensorInfo,
    out: TensorInfo,
  ): boolean;
  /** Backward of batchNormTrain followed by gamma * y + beta (see bn-math.ts). */
  bnAffineBackward(
    backend: WasmBackendLike,
    dz: TensorInfo,
    y: TensorInfo,
    variance: TensorInfo,
    gamma: TensorInfo,
    dx: TensorInfo,
    dgamma: TensorInfo,
    dbeta: TensorInfo,
    eps: number,
  ): boolean;
}

/** dwFilterGrad(x, dy, acc64, tmp, N, H, W, C, OH, OW, sh, sw, pt, pl, KH, KW) */
function dwFilterGradFn(): Fn {
  const f = new Fn(16);
  const [x, dy, acc, tmp, N, H, W, C, OH, OW, sh, sw, pt, pl, KH, KW] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  ] as const;
  const n = f.local(I32);
  const oh = f.local(I32);
  const kh = f.local(I32);
  const ih = f.local(I32);
  const ow = f.local(I32);
  const kw = f.local(I32);
  const iw = f.local(I32);
  const dyrow = f.local(I32);
  const px = f.local(I32);
  const pd = f.local(I32);
  const pa = f.local(I32);
  const pend = f.local(I32);
  const cb = f.local(I32);
  const c4b = f.local(I32);
  const i = f.local(I32);
  const pacc = f.local(I32);
  f.get(C).i32(2).op(op.i32Shl).set(cb);
  f.get(C).i32(-4).op(op.i32And).i32(2).op(op.i32Shl).set(c4b);
  f.for(
    n,
    () => f.i32(0),
    () => f.get(N),
    1,
    () => {
      f.for(
        oh,
        () => f.i32(0),
        () => f.get(OH),
        1,
        () => {
          f.for(
            kh,
            () => f.i32(0),
            () => f.get(KH),
            1,
            () => {
              f.get(oh).get(sh).op(op.i32Mul).get(pt).op(op.i32Sub).get(kh).op(op.i32Add).tee(ih);
              f.get(H)
                .op(op.i32LtU)
                .if(() => {
                  f.for(
                    ow,
                    () => f.i32(0),
                    () => f.get(OW),
                    1,
                    () => {
                      // dyrow = dy + ((n*OH + oh)*OW + ow) * C*4
                      f.get(dy)
                        .get(n)
                        .get(OH)
                        .op(op.i32Mul)
                        .get(oh)
                        .op(op.i32Add)
                        .get(OW)
                        .op(op.i32Mul);
                      f.get(ow).op(op.i32Add).get(cb).op(op.i32Mul).op(op.i32Add).set(dyrow);
                      f.for(
                        kw,
                        () => f.i32(0),
                        () => f.get(KW),
                        1,
                        () => {
                          f.get(ow)
                            .get(sw)
                            .op(op.i32Mul)
                            .get(pl)
                            .op(op.i32Sub)
                            .get(kw)
                            .op(op.i32Add)
                            .tee(iw);
                          f.get(W)
                            .op(op.i32LtU)
                            .if(() => {
                              // px = x + ((n*H + ih)*W + iw) * C*4
                              f.get(x)
                                .get(n)
                                .get(H)
                                .op(op.i32Mul)
                                .get(ih)
                                .op(op.i32Add)
                                .get(W)
                                .op(op.i32Mul);
                              f.get(iw).op(op.i32Add).get(cb).op(op.i32Mul).op(op.i32Add).set(px);
                              f.get(dyrow).set(pd);
                              // pa = tmp + (kh*KW + kw) * C*4
                              f.get(tmp)
                                .get(kh)
                                .get(KW)
                                .op(op.i32Mul)
                                .get(kw)
                                .op(op.i32Add)
                                .get(cb)
                                .op(op.i32Mul);
                              f.op(op.i32Add).set(pa);
                              f.get(px).get(c4b).op(op.i32Add).set(pend);
                              f.whileBelow(px, pend, () => {
                                f.get(pa).get(pa).v128Load().get(px).v128Load().get(pd).v128Load();
                                f.simd(simdOp.f32x4Mul).simd(simdOp.f32x4Add).v128Store();
                                f.inc(px, 16).inc(pd, 16).inc(pa, 16);
                              });
                              f.get(pend).get(cb).op(op.i32Add).get(c4b).op(op.i32Sub).set(pend);
                              f.whileBelow(px, pend, () => {
                                f.get(pa).get(pa).f32Load().get(px).f32Load().get(pd).f32Load();
                                f.op(op.f32Mul).op(op.f32Add).f32Store();
                                f.inc(px, 4).inc(pd, 4).inc(pa, 4);
                              });
                            });
                        },
                      );
                    },
                  );
                });
            },
          );
        },
      );
      // Fold this image's partial sums into the float64 totals: acc += tmp; tmp = 0.
      f.get(tmp).set(pa);
      f.get(acc).set(pacc);
      f.for(
        i,
        () => f.i32(0),
        () => f.get(KH).get(KW).op(op.i32Mul).get(C).op(op.i32Mul),
        1,
        () => {
          f.get(pacc)
            .get(pacc)
            .f64Load()
            .get(pa)
            .f32Load()
            .op(op.f64PromoteF32)
            .op(op.f64Add)
            .f64Store();
          f.get(pa).f32c(0).f32Store();
          f.inc(pa, 4).inc(pacc, 8);
        },
      );
    },
  );
  return f;
}

/**
 * Per-channel sums over R rows of C: forward (mode 0) s1 += x - shift, s2 += (x - shift)^2;
 * backward (mode 1) s1 += a, s2 += a * b. Float32 partials folded into float64 every 64 rows.
 * params: a, b (shift in mode 0), s1, s2, t1, t2, R, C
 */
function sumsFn(mode: 0 | 1): Fn {
  const f = new Fn(8);
  const [a, b, s1, s2, t1, t2, R, C] = [0, 1, 2, 3, 4, 5, 6, 7] as const;
  const r = f.local(I32);
  const pa = f.local(I32);
  const pb = f.local(I32);
  const p1 = f.local(I32);
  const p2 = f.local(I32);
  const pend = f.local(I32);
  const cb = f.local(I32);
  const c4b = f.local(I32);
  const q1 = f.local(I32);
  const q2 = f.local(I32);
  const c = f.local(I32);
  const d = f.local(V128);
  const ds = f.local(F32);
  f.get(C).i32(2).op(op.i32Shl).set(cb);
  f.get(C).i32(-4).op(op.i32And).i32(2).op(op.i32Shl).set(c4b);
  f.get(a).set(pa);
  if (mode === 1) f.get(b).set(pb);
  f.for(
    r,
    () => f.i32(0),
    () => f.get(R),
    1,
    () => {
      if (mode === 0) f.get(b).set(pb);
      f.get(s1).set(p1);
      f.get(s2).set(p2);
      f.get(pa).get(c4b).op(op.i32Add).set(pend);
      f.whileBelow(pa, pend, () => {
        if (mode === 0) {
          f.get(pa).v128Load().get(pb).v128Load().simd(simdOp.f32x4Sub).set(d);
          f.get(p1).get(p1).v128Load().get(d).simd(simdOp.f32x4Add).v128Store();
          f.get(p2)
            .get(p2)
            .v128Load()
            .get(d)
            .get(d)
            .simd(simdOp.f32x4Mul)
            .simd(simdOp.f32x4Add)
            .v128Store();
        } else {
          f.get(pa).v128Load().set(d);
          f.get(p1).get(p1).v128Load().get(d).simd(simdOp.f32x4Add).v128Store();
          f.get(p2).get(p2).v128Load().get(d).get(pb).v128Load().simd(simdOp.f32x4Mul);
          f.simd(simdOp.f32x4Add).v128Store();
        }
        f.inc(pa, 16).inc(pb, 16).inc(p1, 16).inc(p2, 16);
      });
      f.get(pend).get(cb).op(op.i32Add).get(c4b).op(op.i32Sub).set(pend);
      f.whileBelow(pa, pend, () => {
        if (mode === 0) {
          f.get(pa).f32Load().get(pb).f32Load().op(op.f32Sub).set(ds);
          f.get(p1).get(p1).f32Load().get(ds).op(op.f32Add).f32Store();
          f.get(p2).get(p2).f32Load().get(ds).get(ds).op(op.f32Mul).op(op.f32Add).f32Store();
        } else {
          f.get(pa).f32Load().set(ds);
          f.get(p1).get(p1).f32Load().get(ds).op(op.f32Add).f32Store();
          f.get(p2)
            .get(p2)
            .f32Load()
            .get(ds)
            .get(pb)
            .f32Load()
            .op(op.f32Mul)
            .op(op.f32Add)
            .f32Store();
        }
        f.inc(pa, 4).inc(pb, 4).inc(p1, 4).inc(p2, 4);
      });
      // fold when (r & 63) == 63 or r == R - 1
      f.get(r).i32(63).op(op.i32And).i32(63).op(op.i32Eq);
      f.get(r).get(R).i32(1).op(op.i32Sub).op(op.i32Eq).op(op.i32Or);
      f.if(() => {
        f.get(s1).set(p1);
        f.get(s2).set(p2);
        f.get(t1).set(q1);
        f.get(t2).set(q2);
        f.for(
          c,
          () => f.i32(0),
          () => f.get(C),
          1,
          () => {
            f.get(q1)
              .get(q1)
              .f64Load()
              .get(p1)
              .f32Load()
              .op(op.f64PromoteF32)
              .op(op.f64Add)
              .f64Store();
            f.get(q2)
              .get(q2)
              .f64Load()
              .get(p2)
              .f32Load()
              .op(op.f64PromoteF32)
              .op(op.f64Add)
              .f64Store();
            f.get(p1).f32c(0).f32Store();
            f.get(p2).f32c(0).f32Store();
            f.inc(p1, 4).inc(p2, 4).inc(q1, 8).inc(q2, 8);
          },
        );
      });
    },
  );
  return f;
}

/**
 * Per-channel affine maps over R rows of C.
 * nIn 1: out = u*a + b            params: u, a, b, out, R, C
 * nIn 2: out = u*a + v*b + k      params: u, v, a, b, k, out, R, C
 */
function affineFn(nIn: 1 | 2): Fn {
  const f = new Fn(nIn === 1 ? 6 : 8);
  const P =
    nIn === 1
      ? { u: 0, a: 1, b: 2, out: 3, R: 4, C: 5 }
      : { u: 0, v: 1, a: 2, b: 3, k: 4, out: 5, R: 6, C: 7 };
  const r = f.local(I32);
  const pu = f.local(I32);
  const pv = f.local(I32);
  const pa = f.local(I32);
  const pb = f.local(I32);
  const pk = f.local(I32);
  const po = f.local(I32);
  const pend = f.local(I32);
  const cb = f.local(I32);
  const c4b = f.local(I32);
  f.get(P.C).i32(2).op(op.i32Shl).set(cb);
  f.get(P.C).i32(-4).op(op.i32And).i32(2).op(op.i32Shl).set(c4b);
  f.get(P.u).set(pu);
  if (nIn === 2) f.get(P.v!).set(pv);
  f.get(P.out).set(po);
  const step = (w: number, vec: boolean) => {
    const load = () => (vec ? f.v128Load() : f.f32Load());
    const mul = vec ? () => f.simd(simdOp.f32x4Mul) : () => f.op(op.f32Mul);
    const add = vec ? () => f.simd(simdOp.f32x4Add) : () => f.op(op.f32Add);
    f.get(po);
    f.get(pu);
    load();
    f.get(pa);
    load();
    mul();
    if (nIn === 2) {
      f.get(pv);
      load();
      f.get(pb);
      load();
      mul();
      add();
      f.get(pk);
      load();
      add();
    } else {
      f.get(pb);
      load();
      add();
    }
    if (vec) f.v128Store();
    else f.f32Store();
    f.inc(pu, w).inc(pa, w).inc(pb, w).inc(po, w);
    if (nIn === 2) f.inc(pv, w).inc(pk, w);
  };
  f.for(
    r,
    () => f.i32(0),
    () => f.get(P.R),
    1,
    () => {
      f.get(P.a).set(pa);
      f.get(P.b).set(pb);
      if (nIn === 2) f.get(P.k!).set(pk);
      f.get(pu).get(c4b).op(op.i32Add).set(pend);
      f.whileBelow(pu, pend, () => step(16, true));
      f.get(pend).get(cb).op(op.i32Add).get(c4b).op(op.i32Sub).set(pend);
      f.whileBelow(pu, pend, () => step(4, false));
    },
  );
  return f;
}

/**
 * gemmTN(a, b, acc64, tmp, P, M, N): acc[m, n] += sum_p a[p, m] * b[p, n] (both row-major,
 * contraction over rows). Four rows per step (16 MACs per accumulator load/store); float32
 * partials folded into float64 every 256 rows.
 */
function gemmTNFn(): Fn {
  const f = new Fn(7);
  const [a, b, acc, tmp, P, M, N] = [0, 1, 2, 3, 4, 5, 6] as const;
  const p = f.local(I32);
  const m = f.local(I32);
  const mb = f.local(I32);
  const nb = f.local(I32);
  const n4b = f.local(I32);
  const pa = f.local(I32);
  const pt = f.local(I32);
  const q0 = f.local(I32);
  const q1 = f.local(I32);
  const q2 = f.local(I32);
  const q3 = f.local(I32);
  const qend = f.local(I32);
  const i = f.local(I32);
  const pacc = f.local(I32);
  const rows = f.local(I32);
  const base = f.local(I32);
  const v = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const s = [f.local(F32), f.local(F32), f.local(F32), f.local(F32)];
  f.get(M).i32(2).op(op.i32Shl).set(mb);
  f.get(N).i32(2).op(op.i32Shl).set(nb);
  f.get(N).i32(-4).op(op.i32And).i32(2).op(op.i32Shl).set(n4b);
  const fold = () => {
    f.get(tmp).set(pt);
    f.get(acc).set(pacc);
    f.for(
      i,
      () => f.i32(0),
      () => f.get(M).get(N).op(op.i32Mul),
      1,
      () => {
        f.get(pacc)
          .get(pacc)
          .f64Load()
          .get(pt)
          .f32Load()
          .op(op.f64PromoteF32)
          .op(op.f64Add)
          .f64Store();
        f.get(pt).f32c(0).f32Store();
        f.inc(pt, 4).inc(pacc, 8);
      },
    );
  };
  // One pass over `k` rows (k = 4 or 1) starting at row p.
  const step = (k: 4 | 1) => {
    f.get(a).get(p).get(mb).op(op.i32Mul).op(op.i32Add).set(pa);
    f.get(b).get(p).get(nb).op(op.i32Mul).op(op.i32Add).set(base);
    f.get(tmp).set(pt);
    f.for(
      m,
      () => f.i32(0),
      () => f.get(M),
      1,
      () => {
        for (let j = 0; j < k; j++) {
          f.get(pa).get(mb).i32(j).op(op.i32Mul).op(op.i32Add).f32Load().tee(s[j]!);
          f.simd(simdOp.f32x4Splat).set(v[j]!);
        }
        const qs = [q0, q1, q2, q3];
        for (let j = 0; j < k; j++)
          f.get(base).get(nb).i32(j).op(op.i32Mul).op(op.i32Add).set(qs[j]!);
        f.get(q0).get(n4b).op(op.i32Add).set(qend);
        f.whileBelow(q0, qend, () => {
          f.get(pt).get(pt).v128Load();
          for (let j = 0; j < k; j++)
            f.get(v[j]!).get(qs[j]!).v128Load().simd(simdOp.f32x4Mul).simd(simdOp.f32x4Add);
          f.v128Store();
          f.inc(pt, 16);
          for (let j = 0; j < k; j++) f.inc(qs[j]!, 16);
        });
        f.get(qend).get(nb).op(op.i32Add).get(n4b).op(op.i32Sub).set(qend);
        f.whileBelow(q0, qend, () => {
          f.get(pt).get(pt).f32Load();
          for (let j = 0; j < k; j++)
            f.get(s[j]!).get(qs[j]!).f32Load().op(op.f32Mul).op(op.f32Add);
          f.f32Store();
          f.inc(pt, 4);
          for (let j = 0; j < k; j++) f.inc(qs[j]!, 4);
        });
        f.inc(pa, 4);
      },
    );
  };
  f.i32(0).set(rows);
  f.for(
    p,
    () => f.i32(0),
    () => f.get(P).i32(3).op(op.i32Sub),
    4,
    () => {
      step(4);
      f.inc(rows, 4);
      f.get(rows)
        .i32(256)
        .op(op.i32GeU)
        .if(() => {
          fold();
          f.i32(0).set(rows);
        });
    },
  );
  // remaining rows (P % 4), p continues from the loop above
  f.for(
    p,
    () => f.get(p),
    () => f.get(P),
    1,
    () => step(1),
  );
  fold();
  return f;
}

interface Exports {
  gemmTN(...args: number[]): void;
  dwFilterGrad(...args: number[]): void;
  stats(...args: number[]): void;
  sums2(...args: number[]): void;
  affine1(...args: number[]): void;
  affine2(...args: number[]): void;
}

interface WasmGlobal {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}

interface Malloc {
  _malloc(n: number): number;
  _free(p: number): void;
}

let enabled = process.env['METAPRUNE_SIMD_KERNELS'] !== '0';
const cache = new WeakMap<object, SimdKernels | null>();

/** Turns the SIMD kernels on or off (off: the TypeScript loops run); for tests and benches. */
export function useSimdKernels(on: boolean): void {
  enabled = on;
}

let moduleBytes: Uint8Array | undefined;
export function simdModuleBytes(): Uint8Array {
  moduleBytes ??= buildModule([
    { name: 'dwFilterGrad', fn: dwFilterGradFn() },
    { name: 'stats', fn: sumsFn(0) },
    { name: 'sums2', fn: sumsFn(1) },
    { name: 'affine1', fn: affineFn(1) },
    { name: 'affine2', fn: affineFn(2) },
    { name: 'gemmTN', fn: gemmTNFn() },
  ]);
  return moduleBytes;
}

export function simdKernels(backend: WasmBackendLike): SimdKernels | null {
  if (!enabled) return null;
  const hit = cache.get(backend);
  if (hit !== undefined) return hit;
  const made = instantiate(backend);
  cache.set(backend, made);
  return made;
}

function instantiate(backend: WasmBackendLike): SimdKernels | null {
  const WA = (globalThis as { WebAssembly?: WasmGlobal }).WebAssembly;
  const memory = backend.wasm.asm?.memory;
  const heap = backend.wasm as unknown as Partial<Malloc>;
  if (WA == null || memory == null || heap._malloc == null || heap._free == null) return null;
  const bytes = simdModuleBytes();
  if (!WA.validate(bytes)) return null;
  const ex = new WA.Instance(new WA.Module(bytes), { env: { memory } }).exports as Exports;
  // Emscripten returns pointers as signed i32: past 2 GiB of heap they come back negative.
  const malloc = (n: number) => heap._malloc!(n) >>> 0;
  const free = (p: number) => heap._free!(p);
  const H = () => backend.wasm.HEAPU8.buffer;

  /**
   * dx = k1 * dy + k0 + k2 * y per channel, the coefficients from the channel sums of dy
   * and dy * y (one SIMD pass for the sums, one for dx). `coefficients` gets float32 views
   * of other tensors through `f32` (made after the scratch allocation, which may grow the
   * heap and detach older views).
   */
  const backwardPass = (
    b: WasmBackendLike,
    dy: TensorInfo,
    y: TensorInfo,
    dx: TensorInfo,
    coefficients: (
      sumDy: Float64Array,
      sumDyY: Float64Array,
      f32: (t: TensorInfo) => Float32Array,
      R: number,
    ) => { k0: Float32Array; k1: Float32Array; k2: Float32Array },
  ): boolean => {
    const C = dy.shape[dy.shape.length - 1]!;
    const R = dy.shape.reduce((p, q) => p * q, 1) / C;
    // scratch (float64 first, for alignment): t1, t2 (C f64), k1, k2, k0, s1, s2 (C f32)
    const s = malloc(C * 36);
    const t1 = s;
    const t2 = s + 8 * C;
    const k1p = s + 16 * C;
    const k2p = s + 20 * C;
    const k0p = s + 24 * C;
    const s1 = s + 28 * C;
    const s2 = s + 32 * C;
    const buf = H();
    new Float32Array(buf, s1, 2 * C).fill(0);
    new Float64Array(buf, t1, 2 * C).fill(0);
    const dyo = offsetOf(b, dy);
    const yo = offsetOf(b, y);
    ex.sums2(dyo, yo, s1, s2, t1, t2, R, C);
    const { k0, k1, k2 } = coefficients(
      new Float64Array(buf, t1, C),
      new Float64Array(buf, t2, C),
      (t) => new Float32Array(buf, offsetOf(b, t), C),
      R,
    );
    new Float32Array(buf, k1p, C).set(k1);
    new Float32Array(buf, k2p, C).set(k2);
    new Float32Array(buf, k0p, C).set(k0);
    ex.affine2(dyo, yo, k1p, k2p, k0p, offsetOf(b, dx), R, C);
    free(s);
    return true;
  };

  return {
    depthwiseFilterGrad(b, x, dy, out, info) {
      if (info.outChannels !== info.inChannels) return false;
      if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return false;
      const { filterHeight: KH, filterWidth: KW, inChannels: C } = info;
      const n = KH * KW * C;
      const acc = malloc(n * 8);
      const tmp = malloc(n * 4);
      new Float64Array(H(), acc, n).fill(0);
      new Float32Array(H(), tmp, n).fill(0);
      ex.dwFilterGrad(
        offsetOf(b, x),
        offsetOf(b, dy),
        acc,
        tmp,
        info.batchSize,
        info.inHeight,
        info.inWidth,
        C,
        info.outHeight,
        info.outWidth,
        info.strideHeight,
        info.strideWidth,
        info.padInfo.top,
        info.padInfo.left,
        KH,
        KW,
      );
      new Float32Array(H(), offsetOf(b, out), n).set(new Float64Array(H(), acc, n));
      free(acc);
      free(tmp);
      return true;
    },

    gemmTN(b, a, bm, out) {
      const P = a.shape.slice(0, -1).reduce((p, q) => p * q, 1);
      const M = a.shape[a.shape.length - 1]!;
      const N = bm.shape[bm.shape.length - 1]!;
      const n = M * N;
      const acc = malloc(n * 8);
      const tmp = malloc(n * 4);
      new Float64Array(H(), acc, n).fill(0);
      new Float32Array(H(), tmp, n).fill(0);
      ex.gemmTN(offsetOf(b, a), offsetOf(b, bm), acc, tmp, P, M, N);
      new Float32Array(H(), offsetOf(b, out), n).set(new Float64Array(H(), acc, n));
      free(acc);
      free(tmp);
      return true;
    },

    bnForward(b, x, y, mean, variance, eps) {
      const C = x.shape[x.shape.length - 1]!;
      const size = x.shape.reduce((p, q) => p * q, 1);
      const R = size / C;
      // scratch (float64 first, for alignment): t1, t2 (C f64), shift/a, b, s1, s2 (C f32)
      const s = malloc(C * 32);
      const t1 = s;
      const t2 = s + 8 * C;
      const shift = s + 16 * C;
      const coefB = s + 20 * C;
      const s1 = s + 24 * C;
      const s2 = s + 28 * C;
      const xo = offsetOf(b, x);
      const buf = H();
      // Shift by the mean of the first rows: small partial sums, accurate one-pass variance.
      {
        const xs = new Float32Array(buf, xo, Math.min(R, 32) * C);
        const rows = xs.length / C;
        const m = new Float64Array(C);
        for (let i = 0; i < xs.length; i++) m[i % C] = m[i % C]! + xs[i]!;
        const sh0 = new Float32Array(buf, shift, C);
        for (let c = 0; c < C; c++) sh0[c] = m[c]! / rows;
      }
      new Float32Array(buf, s1, 2 * C).fill(0);
      new Float64Array(buf, t1, 2 * C).fill(0);
      ex.stats(xo, shift, s1, s2, t1, t2, R, C);
      const sh = new Float32Array(buf, shift, C);
      const cb = new Float32Array(buf, coefB, C);
      const tot1 = new Float64Array(buf, t1, C);
      const tot2 = new Float64Array(buf, t2, C);
      const mv = new Float32Array(buf, offsetOf(b, mean), C);
      const vv = new Float32Array(buf, offsetOf(b, variance), C);
      for (let c = 0; c < C; c++) {
        const m = tot1[c]! / R;
        const v = Math.max(0, tot2[c]! / R - m * m);
        const mu = sh[c]! + m;
        const rstd = 1 / Math.sqrt(v + eps);
        mv[c] = mu;
        vv[c] = v;
        sh[c] = rstd;
        cb[c] = -mu * rstd;
      }
      ex.affine1(xo, shift, coefB, offsetOf(b, y), R, C);
      free(s);
      return true;
    },

    bnBackward(b, dy, y, variance, dmean, dvar, dx, eps) {
      return backwardPass(b, dy, y, dx, (sumDy, sumDyY, f32, R) =>
        bnBackwardCoefficients(sumDy, sumDyY, f32(variance), f32(dmean), f32(dvar), R, eps),
      );
    },

    scaleShift(b, x, gamma, beta, out) {
      const C = x.shape[x.shape.length - 1]!;
      const R = x.shape.reduce((p, q) => p * q, 1) / C;
      ex.affine1(offsetOf(b, x), offsetOf(b, gamma), offsetOf(b, beta), offsetOf(b, out), R, C);
      return true;
    },

    bnAffineBackward(b, dz, y, variance, gamma, dx, dgamma, dbeta, eps) {
      return backwardPass(b, dz, y, dx, (sumDz, sumDzY, f32, R) =>
        bnAffineCoefficients(
          sumDz,
          sumDzY,
          f32(variance),
          f32(gamma),
          f32(dgamma),
          f32(dbeta),
          R,
          eps,
        ),
      );
    },
  };
}
