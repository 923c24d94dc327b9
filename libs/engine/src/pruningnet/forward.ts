/**
 * Forward passes of a pruned candidate over a core Network's block graph, with its cropped
 * weights given as tensors (one per `net.layers` index):
 *
 * - training mode: conv -> batch norm with batch statistics (no affine) -> activation;
 *   differentiable in the weights; optionally reports every BN site's batch statistics
 *   (for recalibration);
 * - inference mode: BN folded into the conv (fused conv + bias + activation).
 *
 * Padding is 'same' everywhere. Tensors follow tfjs layouts: NHWC activations, conv filters
 * [kh, kw, cin, cout], depthwise filters [kh, kw, c, 1], the classifier [cin, classes].
 */
import type { Activation, Layer, Network } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { batchNormTrain } from '../kernels/batchnorm.js';

export const BN_EPS = 1e-5;

function activate(x: tf.Tensor, act: Activation): tf.Tensor {
  // clipByValue is ~10x faster than relu6 on wasm.
  if (act === 'relu6') return tf.clipByValue(x, 0, 6);
  if (act === 'relu') return tf.relu(x);
  return x;
}

function fusedAct(act: Activation): 'relu6' | 'relu' | 'linear' {
  return act === 'none' ? 'linear' : act;
}

/** Global average pool of NHWC as [N, C] (avgPool is much faster than mean on wasm). */
function globalAvg(x: tf.Tensor): tf.Tensor2D {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (h === 1 && w === 1) return tf.reshape(x, [n, c]);
  return tf.reshape(tf.avgPool(x as tf.Tensor4D, [h, w], [h, w], 'valid'), [n, c]);
}

/** Index of every layer object in `net.layers`. */
export function layerIndex(net: Network): Map<Layer, number> {
  return new Map(net.layers.map((l, i) => [l, i]));
}

export interface TrainForwardOptions {
  /** Receives each BN site's batch mean and (biased) variance; the caller owns them. */
  onStats?: (layer: number, mean: tf.Tensor, variance: tf.Tensor) => void;
  /** Stop after the last BN (recalibration needs no logits). */
  statsOnly?: boolean;
}

/**
 * Training-mode forward. `ws[i]` is layer i's cropped weight; `biases[i]` its bias (the
 * classifier). Returns logits [N, classes] (or the last feature map with `statsOnly`).
 */
export function forwardTrain(
  net: Network,
  index: Map<Layer, number>,
  x: tf.Tensor4D,
  ws: readonly tf.Tensor[],
  biases: readonly (tf.Tensor | undefined)[],
  options: TrainForwardOptions = {},
): tf.Tensor {
  const apply = (layer: Layer, inp: tf.Tensor): tf.Tensor => {
    const i = index.get(layer) as number;
    const w = ws[i] as tf.Tensor;
    if (layer.kind === 'fc') {
      const y = tf.matMul(inp as tf.Tensor2D, w as tf.Tensor2D);
      const b = biases[i];
      return b ? tf.add(y, b) : y;
    }
    const s = layer.stride;
    const y =
      layer.kind === 'depthwise'
        ? tf.depthwiseConv2d(inp as tf.Tensor4D, w as tf.Tensor4D, s, 'same')
        : tf.conv2d(inp as tf.Tensor4D, w as tf.Tensor4D, s, 'same');
    const bn = batchNormTrain(y, BN_EPS);
    if (options.onStats) options.onStats(i, tf.keep(bn.mean), tf.keep(bn.variance));
    return activate(bn.y, layer.act);
  };
  let h: tf.Tensor = x;
  for (const block of net.blocks) {
    if (options.statsOnly && block.kind === 'classifier') break;
    const inp = block.poolBefore === 'global-avg' ? globalAvg(h) : h;
    let y = inp;
    for (const layer of block.layers) y = apply(layer, y);
    if (block.shortcut === 'identity') y = tf.add(y, inp);
    else if (typeof block.shortcut === 'object') y = tf.add(y, apply(block.shortcut, inp));
    if (block.shortcut !== 'none') y = activate(y, block.actAfterAdd);
    if (block.poolAfter === 'max3x3s2') y = tf.maxPool(y as tf.Tensor4D, 3, 2, 'same');
    h = y;
  }
  return h;
}

/**
 * Inference-mode forward with BN folded: `ws[i]` already scaled by 1/sqrt(var + eps) per
 * output channel and `biases[i] = -mean / sqrt(var + eps)`; the classifier's own bias.
 */
export function forwardFolded(
  net: Network,
  index: Map<Layer, number>,
  x: tf.Tensor4D,
  ws: readonly tf.Tensor[],
  biases: readonly (tf.Tensor | undefined)[],
): tf.Tensor2D {
  const apply = (layer: Layer, inp: tf.Tensor, act: Activation): tf.Tensor => {
    const i = index.get(layer) as number;
    const w = ws[i] as tf.Tensor;
    const bias = biases[i] as tf.Tensor1D | undefined;
    if (layer.kind === 'fc') {
      return tf.fused.matMul({ a: inp as tf.Tensor2D, b: w as tf.Tensor2D, bias });
    }
    const s = layer.stride;
    const args = {
      x: inp as tf.Tensor4D,
      filter: w as tf.Tensor4D,
      strides: s,
      pad: 'same' as const,
      bias,
      activation: fusedAct(act),
    };
    return layer.kind === 'depthwise' ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
  };
  let h: tf.Tensor = x;
  for (const block of net.blocks) {
    const inp = block.poolBefore === 'global-avg' ? globalAvg(h) : h;
    let y = inp;
    for (const layer of block.layers) y = apply(layer, y, layer.act);
    if (block.shortcut === 'identity') y = tf.add(y, inp);
    else if (typeof block.shortcut === 'object')
      y = tf.add(y, apply(block.shortcut, inp, block.shortcut.act));
    if (block.shortcut !== 'none') y = activate(y, block.actAfterAdd);
    if (block.poolAfter === 'max3x3s2') y = tf.maxPool(y as tf.Tensor4D, 3, 2, 'same');
    h = y;
  }
  return h as tf.Tensor2D;
}
