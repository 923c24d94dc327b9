/**
 * Small fused element-wise ops for the hand-written backward pass.
 *
 * maskGrad(dy, y, lo, hi) = dy where lo < y < hi, else 0: the gradient of relu (lo 0,
 * hi +inf) and relu6 (0, 6) from their input. One pass over memory instead of the five ops
 * (one a slow broadcasting compare) tfjs uses. On wasm a SIMD loop (built with the engine's
 * tiny assembler, running on the backend's own memory); a plain loop on cpu; tf ops
 * elsewhere.
 */
import * as tf from '@tensorflow/tfjs';
import { arrayIO } from '../kernels/array-io.js';
import { alloc, asWasmBackend, offsetOf, type WasmBackendLike } from '../kernels/heap.js';
import { buildModule, Fn, I32, op, V128 } from '../kernels/wasm-asm.js';

export const MASK_GRAD = 'MetapruneMaskGrad';

const SIMD = {
  splat: 0x13,
  lt: 0x43,
  gt: 0x44,
  and: 0x4e,
} as const;
const F32_REINTERPRET_I32 = 0xbe;

/** mask(dy, y, out, bytes, loBits, hiBits): out = (lo < y < hi) ? dy : 0, 4 lanes a step. */
function maskFn(): Fn {
  const f = new Fn(6);
  const [dy, y, out, bytes, loBits, hiBits] = [0, 1, 2, 3, 4, 5] as const;
  const p = f.local(I32);
  const lo = f.local(V128);
  const hi = f.local(V128);
  const yv = f.local(V128);
  f.get(loBits).op(F32_REINTERPRET_I32).simd(SIMD.splat).set(lo);
  f.get(hiBits).op(F32_REINTERPRET_I32).simd(SIMD.splat).set(hi);
  f.i32(0).set(p);
  f.whileBelow(p, bytes, () => {
    f.get(out).get(p).op(op.i32Add);
    f.get(dy).get(p).op(op.i32Add).v128Load();
    f.get(y).get(p).op(op.i32Add).v128Load().tee(yv);
    f.get(lo).simd(SIMD.gt);
    f.get(yv).get(hi).simd(SIMD.lt);
    f.simd(SIMD.and);
    f.simd(SIMD.and);
    f.v128Store();
    f.inc(p, 16);
  });
  return f;
}

interface MaskExports {
  mask(...args: number[]): void;
}

interface WasmGlobal {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array): boolean;
}

const instances = new WeakMap<object, MaskExports | null>();

function simdMask(backend: WasmBackendLike): MaskExports | null {
  const hit = instances.get(backend);
  if (hit !== undefined) return hit;
  let made: MaskExports | null = null;
  try {
    const WA = (globalThis as { WebAssembly?: WasmGlobal }).WebAssembly;
    const memory = backend.wasm.asm?.memory;
    const bytes = buildModule([{ name: 'mask', fn: maskFn() }]);
    if (WA != null && memory != null && WA.validate(bytes)) {
      made = new WA.Instance(new WA.Module(bytes), { env: { memory } })
        .exports as unknown as MaskExports;
    }
  } catch {
    made = null;
  }
  instances.set(backend, made);
  return made;
}

const bits = new Int32Array(1);
const bitsF = new Float32Array(bits.buffer);
function f32Bits(v: number): number {
  bitsF[0] = v;
  return bits[0] as number;
}

function maskLoop(
  d: Float32Array,
  v: Float32Array,
  o: Float32Array,
  from: number,
  lo: number,
  hi: number,
): void {
  for (let k = from; k < o.length; k++) {
    const t = v[k] as number;
    o[k] = t > lo && t < hi ? (d[k] as number) : 0;
  }
}

function maskGradKernel(backendName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
    const { lo, hi } = attrs as unknown as { lo: number; hi: number };
    const n = dy.shape.reduce((a, b) => a * b, 1);
    if (backendName === 'wasm') {
      const b = asWasmBackend(backend);
      const out = alloc(b, dy.shape);
      const ex = simdMask(b);
      const n4 = ex ? n - (n % 4) : 0;
      if (ex && n4 > 0) {
        ex.mask(
          offsetOf(b, dy),
          offsetOf(b, y),
          offsetOf(b, out),
          n4 * 4,
          f32Bits(lo),
          f32Bits(hi),
        );
      }
      if (n4 < n) {
        const io = arrayIO(backend as tf.KernelBackend, backendName);
        maskLoop(io.view(dy), io.view(y), io.view(out), n4, lo, hi);
      }
      return out;
    }
    const io = arrayIO(backend as tf.KernelBackend, backendName);
    const out = io.alloc(dy.shape);
    maskLoop(io.view(dy), io.view(y), io.view(out), 0, lo, hi);
    return out;
  };
}

let registered = false;

function ensureRegistered(): void {
  if (registered) return;
  for (const b of ['wasm', 'cpu']) {
    if (tf.getKernel(MASK_GRAD, b) == null)
      tf.registerKernel({ kernelName: MASK_GRAD, backendName: b, kernelFunc: maskGradKernel(b) });
  }
  registered = true;
}

export function maskGrad(dy: tf.Tensor, y: tf.Tensor, lo: number, hi: number): tf.Tensor {
  ensureRegistered();
  if (tf.getKernel(MASK_GRAD, tf.getBackend()) != null && dy.dtype === 'float32') {
    return tf.engine().runKernel(MASK_GRAD, { dy, y }, { lo, hi }) as tf.Tensor;
  }
  return tf.tidy(() => {
    let m = tf.greater(y, lo);
    if (Number.isFinite(hi)) m = tf.logicalAnd(m, tf.less(y, hi));
    return tf.mul(dy, tf.cast(m, 'float32'));
  });
}

/**
 * Sum over all rows of a `[..., C]` tensor, as `[C]`, via one plain (non-transposed)
 * matmul: on wasm much faster than `tf.sum` over the leading axes.
 */
export function rowSum(t: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const c = t.shape[t.shape.length - 1] as number;
    const r = t.size / c;
    return tf.reshape(tf.matMul(tf.ones([1, r]), tf.reshape(t, [r, c])), [c]);
  });
}
