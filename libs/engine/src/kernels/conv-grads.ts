/**
 * The three gradient kernels the tfjs wasm backend lacks, implemented on its heap:
 *
 * - Conv2DBackpropFilter: patches (im2col) of the input, then one XNNPACK matmul.
 * - DepthwiseConv2dNativeBackpropInput: the backend's own depthwise conv applied to the
 *   zero-dilated, padded output gradient with the flipped filter (multiplier 1, no
 *   dilation); a direct loop otherwise.
 * - DepthwiseConv2dNativeBackpropFilter: a direct multiply-accumulate pass (SIMD wasm
 *   kernel when available, TypeScript loop otherwise).
 *
 * All take and return `TensorInfo`s like any backend kernel, so tfjs's own gradients of
 * Conv2D, DepthwiseConv2dNative, FusedConv2D and FusedDepthwiseConv2D work unchanged.
 */
import {
  backend_util,
  type Conv2DBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  getKernel,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs';
import {
  alloc,
  asWasmBackend,
  copyInfo,
  dispose,
  f32,
  reshapeInfo,
  type WasmBackendLike,
} from './heap.js';
import { simdKernels } from './simd.js';

type Shape4 = [number, number, number, number];
type Conv2DInfo = backend_util.Conv2DInfo;

function callKernel(
  backend: WasmBackendLike,
  name: string,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): TensorInfo {
  const k = getKernel(name, 'wasm');
  if (k == null) throw new Error(`wasm backend has no ${name} kernel`);
  return k.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

function assertNHWC(dataFormat: string | undefined, op: string): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${op} on wasm: only NHWC is supported, got ${dataFormat}`);
  }
}

/** Blocked transpose of a rows x cols row-major matrix into dst (cols x rows). */
export function transpose2d(
  src: Float32Array,
  srcOff: number,
  rows: number,
  cols: number,
  dst: Float32Array,
  dstOff: number,
): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        const s = srcOff + r * cols;
        for (let c = c0; c < c1; c++) dst[dstOff + c * rows + r] = src[s + c]!;
      }
    }
  }
}

/**
 * Patches of x for a conv: col[p, k] with p = (n, oh, ow) and k = (kh, kw, ci), zeros where
 * the window hangs over the padding. `transposed` writes col^T[k, p] instead.
 */
function gatherPatches(xv: Float32Array, info: Conv2DInfo, out: Float32Array, transposed: boolean) {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
  } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const K = KH * KW * C;
  const P = N * OH * OW;
  if (!transposed) out.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const p = (n * OH + oh) * OW + ow;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh * dh;
          const rowOk = ih >= 0 && ih < H;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw * dw;
            const k0 = (kh * KW + kw) * C;
            if (rowOk && iw >= 0 && iw < W) {
              const xo = ((n * H + ih) * W + iw) * C;
              if (transposed) {
                for (let c = 0; c < C; c++) out[(k0 + c) * P + p] = xv[xo + c]!;
              } else {
                const o = p * K + k0;
                for (let c = 0; c < C; c++) out[o + c] = xv[xo + c]!;
              }
            } else if (transposed) {
              for (let c = 0; c < C; c++) out[(k0 + c) * P + p] = 0;
            }
          }
        }
      }
    }
  }
}

/** Filters up to this many elements use the SIMD kernel (its accumulators stay in cache). */
export const SIMD_GEMM_MAX_OUT = 64 * 1024;

/** dW[kh, kw, ci, co] = sum_p col[p, (kh, kw, ci)] * dy[p, co], as one XNNPACK matmul. */
export const conv2dBackpropFilterWasm: KernelFunc = ({ inputs, backend: be, attrs }) => {
  const backend = asWasmBackend(be);
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as Conv2DBackpropFilterAttrs;
  assertNHWC(a.dataFormat, 'Conv2DBackpropFilter');
  const info = backend_util.computeConv2DInfo(
    x.shape as Shape4,
    a.filterShape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { filterHeight: KH, filterWidth: KW, inChannels: Cin, outChannels: Cout } = info;
  const P = info.batchSize * info.outHeight * info.outWidth;
  const K = KH * KW * Cin;
  const plain =
    KH === 1 &&
    KW === 1 &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0;
  // Small filters: one SIMD pass over the rows of x (or its patches) and dy, no transposes
  // and no packing of a huge operand.
  const simd = simdKernels(backend);
  if (simd != null && K * Cout <= SIMD_GEMM_MAX_OUT) {
    const out = alloc(backend, info.filterShape);
    let col: TensorInfo | undefined;
    if (!plain) {
      col = alloc(backend, [P, K]);
      gatherPatches(f32(backend, x), info, f32(backend, col), false);
    }
    simd.gemmTN(backend, col ?? x, dy, out);
    if (col != null) dispose(backend, col);
    return out;
  }
  // Large filters (e.g. the 1x1 head conv): XNNPACK matmul.
  // The XNNPACK matmul packs (and caches, by tensor id) its b operand; b is always a fresh
  // tensor here, disposed at once, so no stale operator can be picked up by anyone.
  // The operand stored transposed is the one with fewer columns (K or Cout).
  if (K <= Cout) {
    const colT = alloc(backend, [1, K, P]);
    const dyCopy = copyInfo(backend, dy, [1, P, Cout]);
    const xv = f32(backend, x);
    const cv = f32(backend, colT);
    if (plain) transpose2d(xv, 0, P, K, cv, 0);
    else gatherPatches(xv, info, cv, true);
    const out = callKernel(
      backend,
      'BatchMatMul',
      { a: colT, b: dyCopy },
      {
        transposeA: false,
        transposeB: false,
      },
    );
    dispose(backend, colT, dyCopy);
    const res = reshapeInfo(backend, out, info.filterShape);
    dispose(backend, out);
    return res;
  }
  const dyT = alloc(backend, [1, Cout, P]);
  const col = plain ? copyInfo(backend, x, [1, P, K]) : alloc(backend, [1, P, K]);
  if (!plain) gatherPatches(f32(backend, x), info, f32(backend, col), false);
  transpose2d(f32(backend, dy), 0, P, Cout, f32(backend, dyT), 0);
  const outT = callKernel(
    backend,
    'BatchMatMul',
    { a: dyT, b: col },
    {
      transposeA: false,
      transposeB: false,
    },
  );
  dispose(backend, dyT, col);
  const res = alloc(backend, info.filterShape);
  transpose2d(f32(backend, outT), 0, Cout, K, f32(backend, res), 0);
  dispose(backend, outT);
  return res;
};

function depthwiseInfo(
  xShape: number[],
  filterShape: number[],
  a: { strides: number | [number, number]; dilations: number | [number, number]; pad: unknown },
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
): Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as Shape4,
    filterShape as Shape4,
    a.strides,
    a.dilations,
    a.pad as 'same' | 'valid' | number | backend_util.ExplicitPadding,
    dimRoundingMode,
    true,
    'channelsLast',
  );
}

/** Direct loop: dx[n, ih, iw, c] += dy[n, oh, ow, c*M + m] * f[kh, kw, c, m]. */
function depthwiseInputGradLoop(
  dyv: Float32Array,
  fv: Float32Array,
  dxv: Float32Array,
  info: Conv2DInfo,
): void {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
  } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw, outChannels: CO } = info;
  const M = CO / C;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  dxv.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let kh = 0; kh < KH; kh++) {
        const ih = oh * sh - pt + kh * dh;
        if (ih < 0 || ih >= H) continue;
        for (let ow = 0; ow < OW; ow++) {
          const dyo = ((n * OH + oh) * OW + ow) * CO;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw * dw;
            if (iw < 0 || iw >= W) continue;
            const xo = ((n * H + ih) * W + iw) * C;
            const fo = (kh * KW + kw) * CO;
            if (M === 1) {
              for (let c = 0; c < C; c++) dxv[xo + c] = dxv[xo + c]! + dyv[dyo + c]! * fv[fo + c]!;
            } else {
              for (let c = 0; c < C; c++) {
                let s = 0;
                for (let m = 0; m < M; m++) s += dyv[dyo + c * M + m]! * fv[fo + c * M + m]!;
                dxv[xo + c] = dxv[xo + c]! + s;
              }
            }
          }
        }
      }
    }
  }
}

/**
 * dx = depthwise conv (stride 1, 'valid' with explicit pads) of the zero-dilated output
 * gradient with the spatially flipped filter.
 */
export const depthwiseConv2dNativeBackpropInputWasm: KernelFunc = ({
  inputs,
  backend: be,
  attrs,
}) => {
  const backend = asWasmBackend(be);
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  const info = depthwiseInfo(a.inputShape, filter.shape, a, a.dimRoundingMode);
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
  } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const DH = (OH - 1) * sh + 1;
  const DW = (OW - 1) * sw + 1;
  const top = KH - 1 - info.padInfo.top;
  const left = KW - 1 - info.padInfo.left;
  const bottom = H + KH - 1 - DH - top;
  const right = W + KW - 1 - DW - left;
  const native =
    info.outChannels === C &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    top >= 0 &&
    left >= 0 &&
    bottom >= 0 &&
    right >= 0;
  if (!native) {
    const dx = alloc(backend, [N, H, W, C]);
    depthwiseInputGradLoop(f32(backend, dy), f32(backend, filter), f32(backend, dx), info);
    return dx;
  }
  let dyd: TensorInfo;
  if (sh === 1 && sw === 1) {
    dyd = reshapeInfo(backend, dy, dy.shape);
  } else {
    dyd = alloc(backend, [N, DH, DW, C], true);
    const src = f32(backend, dy);
    const dst = f32(backend, dyd);
    for (let n = 0; n < N; n++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const s = ((n * OH + oh) * OW + ow) * C;
          dst.set(src.subarray(s, s + C), ((n * DH + oh * sh) * DW + ow * sw) * C);
        }
      }
    }
  }
  const flipped = alloc(backend, [KH, KW, C, 1]);
  {
    const fv = f32(backend, filter);
    const ff = f32(backend, flipped);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const s = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * C;
        ff.set(fv.subarray(s, s + C), (kh * KW + kw) * C);
      }
    }
  }
  const dx = callKernel(backend, 'DepthwiseConv2dNative', { x: dyd, filter: flipped }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ],
    dataFormat: 'NHWC',
  } as unknown as NamedAttrMap);
  dispose(backend, dyd, flipped);
  return dx;
};

/** Direct loop (float64 accumulators): dF[kh, kw, c, m] = sum x[.., c] * dy[.., c*M + m]. */
export function depthwiseFilterGradLoop(
  xv: Float32Array,
  dyv: Float32Array,
  info: Conv2DInfo,
): Float64Array {
  const {
    batchSize: N,
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
  } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const { dilationHeight: dh, dilationWidth: dw, outChannels: CO } = info;
  const M = CO / C;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const acc = new Float64Array(KH * KW * CO);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let kh = 0; kh < KH; kh++) {
        const ih = oh * sh - pt + kh * dh;
        if (ih < 0 || ih >= H) continue;
        for (let ow = 0; ow < OW; ow++) {
          const dyo = ((n * OH + oh) * OW + ow) * CO;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw * dw;
            if (iw < 0 || iw >= W) continue;
            const xo = ((n * H + ih) * W + iw) * C;
            const fo = (kh * KW + kw) * CO;
            if (M === 1) {
              for (let c = 0; c < C; c++) acc[fo + c] = acc[fo + c]! + xv[xo + c]! * dyv[dyo + c]!;
            } else {
              for (let c = 0; c < C; c++) {
                const xc = xv[xo + c]!;
                for (let m = 0; m < M; m++) {
                  const j = c * M + m;
                  acc[fo + j] = acc[fo + j]! + xc * dyv[dyo + j]!;
                }
              }
            }
          }
        }
      }
    }
  }
  return acc;
}

export const depthwiseConv2dNativeBackpropFilterWasm: KernelFunc = ({
  inputs,
  backend: be,
  attrs,
}) => {
  const backend = asWasmBackend(be);
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = depthwiseInfo(x.shape, a.filterShape, a, a.dimRoundingMode);
  const out = alloc(backend, a.filterShape);
  const simd = simdKernels(backend);
  if (
    simd != null &&
    info.outChannels === info.inChannels &&
    simd.depthwiseFilterGrad(backend, x, dy, out, info)
  ) {
    return out;
  }
  f32(backend, out).set(depthwiseFilterGradLoop(f32(backend, x), f32(backend, dy), info));
  return out;
};
