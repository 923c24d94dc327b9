/**
 * A tiny WebAssembly assembler: just enough to emit SIMD loop kernels that run on the tfjs
 * wasm backend's own memory (imported as env.memory). No toolchain needed at build time.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

export function uleb(v: number): number[] {
  const out: number[] = [];
  let n = v >>> 0;
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(v: number): number[] {
  const out: number[] = [];
  let n = v | 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function str(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Opcodes used by the kernels. */
export const op = {
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32And: 0x71,
  i32Or: 0x72,
  i32Shl: 0x74,
  i32Eq: 0x46,
  i32LtU: 0x49,
  i32GeU: 0x4f,
  i32GeS: 0x4e,
  f32Add: 0x92,
  f32Sub: 0x93,
  f32Mul: 0x94,
  f32Min: 0x96,
  f32Max: 0x97,
  f64Add: 0xa0,
  f64PromoteF32: 0xbb,
} as const;

export const simdOp = {
  f32x4Splat: 0x13,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Min: 0xe8,
  f32x4Max: 0xe9,
} as const;

/** Emits one function body; params are locals 0..n-1 (all i32 here). */
export class Fn {
  readonly code: number[] = [];
  private readonly extra: number[] = [];
  constructor(readonly nParams: number) {}

  local(type: number): number {
    this.extra.push(type);
    return this.nParams + this.extra.length - 1;
  }
  raw(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  get(l: number): this {
    return this.raw(0x20, ...uleb(l));
  }
  set(l: number): this {
    return this.raw(0x21, ...uleb(l));
  }
  tee(l: number): this {
    return this.raw(0x22, ...uleb(l));
  }
  i32(v: number): this {
    return this.raw(0x41, ...sleb(v));
  }
  f32c(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.raw(0x43, ...b);
  }
  op(code: number): this {
    return this.raw(code);
  }
  simd(code: number): this {
    return this.raw(0xfd, ...uleb(code));
  }
  f32Load(): this {
    return this.raw(0x2a, 2, 0);
  }
  f32Store(): this {
    return this.raw(0x38, 2, 0);
  }
  f64Load(): this {
    return this.raw(0x2b, 3, 0);
  }
  f64Store(): this {
    return this.raw(0x39, 3, 0);
  }
  v128Load(): this {
    return this.simd(0x00).raw(2, 0);
  }
  v128Store(): this {
    return this.simd(0x0b).raw(2, 0);
  }
  /** local += v (i32). */
  inc(l: number, v: number): this {
    return this.get(l).i32(v).op(op.i32Add).set(l);
  }
  /** if (cond on stack) { body } */
  if(body: () => void): this {
    this.raw(0x04, 0x40);
    body();
    return this.raw(0x0b);
  }
  /** for (l = start; l < limit (signed); l += step) body; start/limit push one i32 each. */
  for(l: number, start: () => void, limit: () => void, step: number, body: () => void): this {
    start();
    this.set(l);
    this.raw(0x02, 0x40, 0x03, 0x40);
    this.get(l);
    limit();
    this.op(op.i32GeS).raw(0x0d, 1);
    body();
    this.inc(l, step);
    return this.raw(0x0c, 0, 0x0b, 0x0b);
  }
  /** while (p <u end) { body } (body advances p). */
  whileBelow(p: number, end: number, body: () => void): this {
    this.raw(0x02, 0x40, 0x03, 0x40);
    this.get(p).get(end).op(op.i32GeU).raw(0x0d, 1);
    body();
    return this.raw(0x0c, 0, 0x0b, 0x0b);
  }
  bytes(): number[] {
    const groups: number[] = [];
    let count = 0;
    let i = 0;
    while (i < this.extra.length) {
      let j = i;
      while (j < this.extra.length && this.extra[j] === this.extra[i]) j++;
      groups.push(...uleb(j - i), this.extra[i]!);
      count++;
      i = j;
    }
    const body = [...uleb(count), ...groups, ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/**
 * A module importing env.memory and exporting the given void(i32...) functions; with
 * `shared`, the import is a shared memory of at most `shared.maxPages` pages (threads).
 */
export function buildModule(
  fns: { name: string; fn: Fn }[],
  shared?: { maxPages: number },
): Uint8Array {
  const arities = [...new Set(fns.map((f) => f.fn.nParams))];
  const types = arities.flatMap((n) => [0x60, ...uleb(n), ...new Array<number>(n).fill(I32), 0]);
  const typeSec = section(1, [...uleb(arities.length), ...types]);
  // limits: 0x00 min (unshared), 0x03 min+max shared
  const limits = shared ? [0x03, ...uleb(1), ...uleb(shared.maxPages)] : [0x00, 1];
  const importSec = section(2, [1, ...str('env'), ...str('memory'), 0x02, ...limits]);
  const funcSec = section(3, [
    ...uleb(fns.length),
    ...fns.flatMap((f) => uleb(arities.indexOf(f.fn.nParams))),
  ]);
  const exportSec = section(7, [
    ...uleb(fns.length),
    ...fns.flatMap((f, i) => [...str(f.name), 0x00, ...uleb(i)]),
  ]);
  const codeSec = section(10, [...uleb(fns.length), ...fns.flatMap((f) => f.fn.bytes())]);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...typeSec,
    ...importSec,
    ...funcSec,
    ...exportSec,
    ...codeSec,
  ]);
}
