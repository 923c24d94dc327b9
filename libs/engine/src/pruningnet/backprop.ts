/**
 * Training forward + hand-written backward of a candidate network (no autodiff tape).
 *
 * tfjs' tape clones every tensor it saves (an Identity copy each), builds relu6's gradient
 * from five small ops, and differentiates a 1x1 conv through Conv2DBackpropInput, which the
 * wasm backend runs as a naive loop. Here the backward pass is written out per layer and
 * uses the fast kernels instead:
 *
 * - conv input gradient, stride 1 and odd kernel: a forward conv of dy with the flipped,
 *   in/out-transposed filter (XNNPACK); other strides: the Conv2DBackpropInput kernel;
 * - depthwise input gradient, stride 1: a depthwise conv with the flipped filter;
 *   other strides: the DepthwiseConv2dNativeBackpropInput kernel;
 * - filter gradients: Conv2DBackpropFilter / DepthwiseConv2dNativeBackpropFilter kernels;
 * - batch norm: the engine's batchNormTrain and its gradient kernel;
 * - relu / relu6 gradients: one masking op (maskGrad);
 * - saved tensors are disposed as soon as the backward pass is past them.
 *
 * The PruningNet's batch norm has no affine parameters. Plain networks (retraining) pass
 * `options.affine` (gamma, beta per BN layer): z = gamma * y + beta after the
 * normalisation, with dgamma = sum(dz * y) and dbeta = sum(dz) over all but the channel
 * axis, all inside one fused kernel with the normalisation's own backward (the sums it needs
 * are the same), and `options.onBatchStats` to update moving statistics.
 *
 * The result is checked against tfjs autodiff of forwardTrain in the tests.
 */
import type { Activation, Block, Layer, Network } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import {
  BN_TRAIN_GRAD,
  batchNormAffineGrad,
  batchNormTrain,
  scaleShift,
} from '../kernels/batchnorm.js';
import { BN_EPS } from './forward.js';
import { maskGrad } from './ops.js';

interface LayerRec {
  layer: Layer;
  i: number;
  /** Layer input (conv: for the filter gradient; fc: pooled features). */
  x: tf.Tensor;
  /** Normalised conv output (before the affine transform and the activation). */
  y?: tf.Tensor;
  /** Affine output gamma * y + beta (the activation's input), when the BN is affine. */
  a?: tf.Tensor;
  gamma?: tf.Tensor;
  variance?: tf.Tensor;
  /** Whether the input gradient is needed (false for the network input). */
  needDx: boolean;
}

interface BlockRec {
  block: Block;
  /** Block input shape (for the global pool backward). */
  inShape: number[];
  layers: LayerRec[];
  short: LayerRec | null;
  /** Output after the residual add and its activation (before poolAfter). */
  added?: tf.Tensor;
  /** Output of poolAfter. */
  pooled?: tf.Tensor;
}

export interface TrainPassResult {
  loss: number;
  correct: number;
  /** Gradient of the mean loss w.r.t. every layer's weight (by layer index). */
  gradW: tf.Tensor[];
  /** Gradient w.r.t. the classifier biases (by layer index). */
  gradB: (tf.Tensor | undefined)[];
  /** Gradients w.r.t. the BN gamma / beta (by layer index; only with `options.affine`). */
  gradGamma: (tf.Tensor | undefined)[];
  gradBeta: (tf.Tensor | undefined)[];
}

/** Affine parameters of one layer's batch norm, each `[channels]`. */
export interface AffineBn {
  gamma: tf.Tensor;
  beta: tf.Tensor;
}

export interface TrainPassOptions {
  /** Per layer index: the BN's gamma and beta (absent: no affine transform). */
  affine?: readonly (AffineBn | undefined)[];
  /**
   * Called in the forward pass with every BN layer's batch mean and (biased) variance; the
   * tensors are disposed after the pass, so copy what is kept (e.g. into a variable).
   */
  onBatchStats?: (layerIndex: number, mean: tf.Tensor, variance: tf.Tensor) => void;
}

function act(x: tf.Tensor, a: Activation): tf.Tensor {
  // clipByValue is ~10x faster than relu6 on wasm.
  if (a === 'relu6') return tf.clipByValue(x, 0, 6);
  if (a === 'relu') return tf.relu(x);
  return x;
}

function actGrad(dy: tf.Tensor, y: tf.Tensor, a: Activation): tf.Tensor {
  if (a === 'relu6') return maskGrad(dy, y, 0, 6);
  if (a === 'relu') return maskGrad(dy, y, 0, Number.POSITIVE_INFINITY);
  return dy;
}

function bnGrad(dy: tf.Tensor, y: tf.Tensor, variance: tf.Tensor): tf.Tensor {
  const backend = tf.getBackend();
  if (tf.getKernel(BN_TRAIN_GRAD, backend) != null) {
    return tf.tidy(() => {
      const zeros = tf.zerosLike(variance);
      return tf
        .engine()
        .runKernel(
          BN_TRAIN_GRAD,
          { dy, y, variance, dmean: zeros, dvar: zeros },
          { eps: BN_EPS },
        ) as tf.Tensor;
    });
  }
  // dx = rstd * (dy - mean(dy) - y * mean(dy * y)), statistics over all but the last axis.
  return tf.tidy(() => {
    const axes = dy.shape.slice(0, -1).map((_, k) => k);
    const rstd = tf.rsqrt(tf.add(variance, BN_EPS));
    const m1 = tf.mean(dy, axes);
    const m2 = tf.mean(tf.mul(dy, y), axes);
    return tf.mul(tf.sub(tf.sub(dy, m1), tf.mul(y, m2)), rstd);
  });
}

/** [kh, kw, cin, cout] -> spatially flipped [kh, kw, cout, cin]. */
function flipTranspose(w: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, cin, cout] = w.shape;
  if (kh === 1 && kw === 1) {
    // 3-D transpose: much faster than a 2-D one on wasm.
    return tf.reshape(tf.transpose(tf.reshape(w, [1, cin, cout]), [0, 2, 1]), [1, 1, cout, cin]);
  }
  return tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]);
}

function convInputGrad(
  dz: tf.Tensor4D,
  w: tf.Tensor4D,
  layer: Layer,
  inShape: number[],
): tf.Tensor {
  const k = layer.kernel;
  if (layer.stride === 1 && k % 2 === 1) {
    return tf.tidy(() => tf.conv2d(dz, flipTranspose(w), 1, 'same'));
  }
  return tf.engine().runKernel('Conv2DBackpropInput', { dy: dz, filter: w }, {
    strides: [layer.stride, layer.stride],
    pad: 'same',
    dataFormat: 'NHWC',
    dimRoundingMode: undefined,
    inputShape: inShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function depthwiseInputGrad(
  dz: tf.Tensor4D,
  w: tf.Tensor4D,
  layer: Layer,
  inShape: number[],
): tf.Tensor {
  if (layer.stride === 1 && layer.kernel % 2 === 1) {
    return tf.tidy(() => tf.depthwiseConv2d(dz, tf.reverse(w, [0, 1]) as tf.Tensor4D, 1, 'same'));
  }
  return tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: dz, filter: w }, {
    strides: [layer.stride, layer.stride],
    pad: 'same',
    dilations: [1, 1],
    dimRoundingMode: undefined,
    inputShape: inShape,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function filterGrad(x: tf.Tensor, dz: tf.Tensor, w: tf.Tensor, layer: Layer): tf.Tensor {
  const depthwise = layer.kind === 'depthwise';
  return tf
    .engine()
    .runKernel(
      depthwise ? 'DepthwiseConv2dNativeBackpropFilter' : 'Conv2DBackpropFilter',
      { x, dy: dz },
      {
        strides: [layer.stride, layer.stride],
        pad: 'same',
        dataFormat: 'NHWC',
        dilations: [1, 1],
        dimRoundingMode: undefined,
        filterShape: w.shape,
      } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor;
}

function globalAvg(x: tf.Tensor): tf.Tensor2D {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (h === 1 && w === 1) return tf.reshape(x, [n, c]);
  return tf.reshape(tf.avgPool(x as tf.Tensor4D, [h, w], [h, w], 'valid'), [n, c]);
}

/**
 * Forward (training mode) and backward of the mean label-smoothed cross-entropy over the
 * batch. Call inside tf.tidy; the returned gradients are the only tensors left.
 */
export function trainPass(
  net: Network,
  index: Map<Layer, number>,
  x: tf.Tensor4D,
  ws: readonly tf.Tensor[],
  biases: readonly (tf.Tensor | undefined)[],
  labels: Int32Array,
  labelSmoothing: number,
  options: TrainPassOptions = {},
): TrainPassResult {
  const gradW: tf.Tensor[] = new Array(ws.length);
  const gradB: (tf.Tensor | undefined)[] = new Array(ws.length).fill(undefined);
  const gradGamma: (tf.Tensor | undefined)[] = new Array(ws.length).fill(undefined);
  const gradBeta: (tf.Tensor | undefined)[] = new Array(ws.length).fill(undefined);
  const { affine, onBatchStats } = options;
  const recs: BlockRec[] = [];
  const n = x.shape[0];

  // ---- forward
  const applyLayer = (layer: Layer, inp: tf.Tensor, needDx: boolean): [tf.Tensor, LayerRec] => {
    const i = index.get(layer) as number;
    const w = ws[i] as tf.Tensor;
    const rec: LayerRec = { layer, i, x: inp, needDx };
    if (layer.kind === 'fc') {
      const b = biases[i];
      const y = tf.matMul(inp as tf.Tensor2D, w as tf.Tensor2D);
      if (!b) return [y, rec];
      const out = tf.add(y, b);
      y.dispose();
      return [out, rec];
    }
    const z =
      layer.kind === 'depthwise'
        ? tf.depthwiseConv2d(inp as tf.Tensor4D, w as tf.Tensor4D, layer.stride, 'same')
        : tf.conv2d(inp as tf.Tensor4D, w as tf.Tensor4D, layer.stride, 'same');
    const bn = batchNormTrain(z, BN_EPS);
    z.dispose();
    onBatchStats?.(i, bn.mean, bn.variance);
    bn.mean.dispose();
    rec.y = bn.y;
    rec.variance = bn.variance;
    const af = affine?.[i];
    if (!af) return [act(bn.y, layer.act), rec];
    rec.a = scaleShift(bn.y, af.gamma, af.beta);
    rec.gamma = af.gamma;
    return [act(rec.a, layer.act), rec];
  };

  let h: tf.Tensor = x;
  let first = true;
  for (const block of net.blocks) {
    const rec: BlockRec = { block, inShape: h.shape, layers: [], short: null };
    const pin = block.poolBefore === 'global-avg' ? globalAvg(h) : h;
    let y = pin;
    for (const layer of block.layers) {
      const [out, r] = applyLayer(layer, y, !first || rec.layers.length > 0);
      rec.layers.push(r);
      y = out;
    }
    if (block.shortcut === 'identity') {
      y = tf.add(y, pin);
    } else if (typeof block.shortcut === 'object') {
      const [s, r] = applyLayer(block.shortcut, pin, !first);
      rec.short = r;
      y = tf.add(y, s);
    }
    if (block.shortcut !== 'none') {
      y = act(y, block.actAfterAdd);
      if (block.actAfterAdd !== 'none') rec.added = y;
    }
    if (block.poolAfter === 'max3x3s2') {
      rec.added = y;
      y = tf.maxPool(y as tf.Tensor4D, 3, 2, 'same');
      rec.pooled = y;
    }
    recs.push(rec);
    h = y;
    first = false;
  }

  // ---- loss: mean over the batch of -sum(q * log softmax), q the smoothed one-hot.
  const logits = h as tf.Tensor2D;
  const classes = logits.shape[1];
  const lab = tf.tensor1d(labels.subarray(0, n), 'int32');
  const q = tf.add(tf.mul(tf.oneHot(lab, classes), 1 - labelSmoothing), labelSmoothing / classes);
  const logp = tf.logSoftmax(logits);
  const loss = tf.neg(tf.div(tf.sum(tf.mul(q, logp)), n)).dataSync()[0] as number;
  const pred = tf.argMax(logits, 1).dataSync();
  let correct = 0;
  for (let k = 0; k < n; k++) if (pred[k] === labels[k]) correct++;
  let d: tf.Tensor = tf.div(tf.sub(tf.exp(logp), q), n);

  // ---- backward
  const backLayer = (r: LayerRec, da: tf.Tensor): tf.Tensor | null => {
    const { layer, i } = r;
    const w = ws[i] as tf.Tensor;
    if (layer.kind === 'fc') {
      const xT = tf.transpose(r.x);
      gradW[i] = tf.matMul(xT as tf.Tensor2D, da as tf.Tensor2D);
      if (biases[i]) gradB[i] = tf.sum(da, 0);
      if (!r.needDx) return null;
      return tf.matMul(da as tf.Tensor2D, tf.transpose(w) as tf.Tensor2D);
    }
    const y = r.y as tf.Tensor;
    const variance = r.variance as tf.Tensor;
    let dz: tf.Tensor;
    if (r.a) {
      const dA = actGrad(da, r.a, layer.act);
      const g = batchNormAffineGrad(dA, y, variance, r.gamma as tf.Tensor, BN_EPS);
      gradGamma[i] = g.dgamma;
      gradBeta[i] = g.dbeta;
      dz = g.dx;
      if (dA !== da) dA.dispose();
      r.a.dispose();
    } else {
      const dy = actGrad(da, y, layer.act);
      dz = bnGrad(dy, y, variance);
      if (dy !== da) dy.dispose();
    }
    y.dispose();
    variance.dispose();
    gradW[i] = filterGrad(r.x, dz, w, layer);
    let dx: tf.Tensor | null = null;
    if (r.needDx) {
      dx =
        layer.kind === 'depthwise'
          ? depthwiseInputGrad(dz as tf.Tensor4D, w as tf.Tensor4D, layer, r.x.shape)
          : convInputGrad(dz as tf.Tensor4D, w as tf.Tensor4D, layer, r.x.shape);
    }
    dz.dispose();
    return dx;
  };

  for (let b = recs.length - 1; b >= 0; b--) {
    const rec = recs[b] as BlockRec;
    const { block } = rec;
    if (block.poolAfter === 'max3x3s2') {
      d = tf
        .engine()
        .runKernel(
          'MaxPoolGrad',
          { dy: d, input: rec.added as tf.Tensor, output: rec.pooled as tf.Tensor },
          {
            filterSize: 3,
            strides: 2,
            pad: 'same',
            dimRoundingMode: undefined,
          } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor;
    }
    if (block.shortcut !== 'none' && block.actAfterAdd !== 'none') {
      d = actGrad(d, rec.added as tf.Tensor, block.actAfterAdd);
    }
    const dOut = d;
    let dm: tf.Tensor | null = dOut;
    for (let k = rec.layers.length - 1; k >= 0 && dm; k--) {
      const prev: tf.Tensor = dm;
      dm = backLayer(rec.layers[k] as LayerRec, prev);
      if (prev !== dOut) prev.dispose();
    }
    let dPin = dm;
    if (block.shortcut === 'identity' && dPin) dPin = tf.add(dPin, dOut);
    else if (rec.short) {
      const ds = backLayer(rec.short, dOut);
      if (ds && dPin) dPin = tf.add(dPin, ds);
    }
    if (!dPin) break;
    if (block.poolBefore === 'global-avg') {
      const [bn, bh, bw, bc] = rec.inShape as [number, number, number, number];
      // Broadcast over the pooled window (a broadcasting multiply: Tile is slow on wasm).
      dPin = tf.mul(tf.ones([1, bh, bw, 1]), tf.reshape(tf.div(dPin, bh * bw), [bn, 1, 1, bc]));
    }
    d = dPin;
  }
  return { loss, correct, gradW, gradB, gradGamma, gradBeta };
}
