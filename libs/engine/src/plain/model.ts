/**
 * Plain pruned networks: an encoding of a core {@link Network} materialised as an
 * ordinary tfjs `LayersModel` (no weight generators), built with the functional API from
 * stock layers only, so that plain `@tensorflow/tfjs` can load it without registering
 * anything.
 *
 * Layer graph, per core block:
 * - every main-path layer: `conv2d` / `depthwiseConv2d` without bias, then
 *   `batchNormalization` (affine), then `reLU` (`maxValue: 6` for relu6) unless `act` is
 *   `none`; the classifier is a `dense` layer with bias, applied after
 *   `globalAveragePooling2d` (`poolBefore`);
 * - shortcut: `identity` adds the block input, a projection layer (conv + BN) adds its
 *   output; `actAfterAdd` follows the `add`; `poolAfter` is a 3x3/2 `maxPooling2d`.
 * Padding is `same` everywhere, as in the engine. Layers are named after the core layers
 * (`block3.dw`, `block3.dw.bn`, `block3.dw.act`, `block3.add`, ...).
 *
 * The input stage turns the dataset's native images (NHWC, pixels in [0, 1]) into what
 * the network expects, mirroring `@metaprune/data`'s preprocessing in the same order:
 * zero padding (`zeroPadding2d`) or bilinear resizing (frozen `dense` layers along width
 * and height between `permute`s), then normalisation `(x - mean) / std` per channel
 * together with 1 -> n channel replication, as a frozen 1x1 `conv2d` with bias
 * (`input.norm`). The input-stage layers are named `input.*` and are not trainable.
 *
 * Parameter rule (tested): the model's trainable parameters equal core's
 * `countCost(net, enc).params` (weights, BN gamma + beta, classifier bias). Its
 * non-trainable parameters are the BN moving mean + variance (2 per BN channel) plus the
 * frozen input normalisation (`cin * cout + cout`). See {@link plainParamCounts}.
 */
import type { Block, Encoding, Layer, Network } from '@metaprune/core';
import { validateEncoding, widthOf } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';

/**
 * How the native images become network input: the JSON-serialisable preprocessing of
 * `@metaprune/data` (structurally its `PreprocessConfig`).
 */
export interface InputPreprocess {
  /** Native image `[height, width, channels]`. */
  inputShape: readonly [number, number, number];
  /** What the network consumes; must be `[inputSize, inputSize, inputChannels]` of the spec. */
  outputShape: readonly [number, number, number];
  /** Per input channel, [0, 1] pixel scale. */
  mean: readonly number[];
  /** Per input channel, [0, 1] pixel scale. */
  std: readonly number[];
  resize: 'none' | 'pad' | 'bilinear';
  /** `[top, bottom, left, right]` zeros when `resize` is `pad`. */
  pad: readonly [number, number, number, number];
}

type Values = Float32Array | tf.Tensor;

/**
 * Weights of one core layer, in tfjs layout:
 * - conv `weight` `[k, k, cin, cout]`; depthwise `[k, k, c, 1]` (or `[k, k, c]`);
 *   classifier `[cin, cout]` plus `bias` `[cout]`;
 * - BN (every conv / depthwise): `mean` and `variance` become the moving statistics;
 *   `gamma` / `beta` default to 1 / 0 (the PruningNet's BN is not affine).
 * Sizes must match the pruned widths exactly (crop before handing them over).
 */
export interface PlainLayerWeights {
  weight: Values;
  bias?: Values;
  mean?: Values;
  variance?: Values;
  gamma?: Values;
  beta?: Values;
}

export type PlainWeights =
  | ReadonlyMap<string, PlainLayerWeights>
  | Readonly<Record<string, PlainLayerWeights>>;

export interface BuildPlainOptions {
  /** `scratch`: He-normal kernels, BN gamma 1 / beta 0 / mean 0 / var 1. Or given weights. */
  init?: 'scratch' | PlainWeights;
  /** Native-image input stage; absent: the model takes the spec's input as is. */
  inputPreprocess?: InputPreprocess;
  /** Seed of the scratch initialisation (default 0). */
  seed?: number;
  /** BN epsilon (default 1e-5, as the PyTorch reference and the PruningNet). */
  bnEpsilon?: number;
  /** BN moving-average momentum in tfjs' sense (default 0.9 = PyTorch's 0.1). */
  bnMomentum?: number;
  /** Model name (default `<family>-<preset>-plain`). */
  name?: string;
}

/** Layer names of the input stage (not part of the core network). */
export const INPUT_LAYER = 'input';
export const INPUT_PAD_LAYER = 'input.pad';
export const INPUT_RESIZE_LAYER = 'input.resize';
export const INPUT_NORM_LAYER = 'input.norm';

export class PlainModelError extends Error {
  override name = 'PlainModelError';
}

/** Looks a layer's weights up in a Map or a record. */
function lookup(weights: PlainWeights, name: string): PlainLayerWeights | undefined {
  if (weights instanceof Map) return weights.get(name);
  return (weights as Readonly<Record<string, PlainLayerWeights>>)[name];
}

/** Builds the frozen input stage and returns its output. */
function inputStage(
  input: tf.SymbolicTensor,
  pre: InputPreprocess,
  expected: readonly [number, number, number],
): tf.SymbolicTensor {
  const [ih, iw, ic] = pre.inputShape;
  const [oh, ow, oc] = pre.outputShape;
  if (oh !== expected[0] || ow !== expected[1] || oc !== expected[2]) {
    throw new PlainModelError(
      `inputPreprocess.outputShape [${pre.outputShape.join(', ')}] does not match the network input [${expected.join(', ')}]`,
    );
  }
  if (pre.mean.length !== ic || pre.std.length !== ic) {
    throw new PlainModelError(`inputPreprocess needs ${ic} mean and std values (one per channel)`);
  }
  if (oc !== ic && ic !== 1) {
    throw new PlainModelError(`cannot turn ${ic} input channels into ${oc} (only 1 -> n)`);
  }
  pre.std.forEach((s, c) => {
    if (!(s > 0)) throw new PlainModelError(`inputPreprocess.std[${c}] must be positive, got ${s}`);
  });
  let x = input;
  if (pre.resize === 'pad') {
    const [t, b, l, r] = pre.pad;
    if (ih + t + b !== oh || iw + l + r !== ow) {
      throw new PlainModelError(
        `inputPreprocess.pad [${pre.pad.join(', ')}] does not give ${oh}x${ow}`,
      );
    }
    x = tf.layers
      .zeroPadding2d({
        name: INPUT_PAD_LAYER,
        padding: [
          [t, b],
          [l, r],
        ],
      })
      .apply(x) as tf.SymbolicTensor;
  } else if (pre.resize === 'bilinear') {
    x = bilinearResize(x, ih, iw, oh, ow);
  } else if (ih !== oh || iw !== ow) {
    throw new PlainModelError(
      `inputPreprocess.resize is 'none' but ${ih}x${iw} differs from ${oh}x${ow}`,
    );
  }
  // (x - mean) / std per channel, replicated to `oc` output channels: a frozen 1x1 conv.
  const norm = tf.layers.conv2d({
    name: INPUT_NORM_LAYER,
    filters: oc,
    kernelSize: 1,
    useBias: true,
    trainable: false,
    kernelInitializer: 'zeros',
    biasInitializer: 'zeros',
  });
  const out = norm.apply(x) as tf.SymbolicTensor;
  const kernel = new Float32Array(ic * oc);
  const bias = new Float32Array(oc);
  for (let o = 0; o < oc; o++) {
    const c = ic === oc ? o : 0;
    const std = pre.std[c] as number;
    kernel[c * oc + o] = 1 / std;
    bias[o] = -(pre.mean[c] as number) / std;
  }
  tf.tidy(() => norm.setWeights([tf.tensor4d(kernel, [1, 1, ic, oc]), tf.tensor1d(bias)]));
  return out;
}

/**
 * The matrix that resizes a length-`n` signal to `m` samples as
 * `tf.image.resizeBilinear` does with alignCorners = false, halfPixelCenters = false
 * (source position `o * n / m`, clamped neighbour), laid out `[n, m]` for a dense kernel.
 */
function bilinearMatrix(n: number, m: number): Float32Array {
  const k = new Float32Array(n * m);
  const scale = n / m;
  for (let o = 0; o < m; o++) {
    const f = scale * o;
    const i0 = Math.floor(f);
    const i1 = Math.min(n - 1, Math.ceil(f));
    const r = f - i0;
    k[i0 * m + o]! += 1 - r;
    k[i1 * m + o]! += r;
  }
  return k;
}

/**
 * Bilinear resizing from stock layers only: a frozen `dense` along the width, then along
 * the height, with `permute`s in between (tfjs 4.22's `resizing` layer reports a wrong
 * output shape and uses alignCorners = true, so it cannot be used).
 */
function bilinearResize(
  x: tf.SymbolicTensor,
  ih: number,
  iw: number,
  oh: number,
  ow: number,
): tf.SymbolicTensor {
  const frozen = (name: string, units: number, kernel: Float32Array, n: number) => {
    const d = tf.layers.dense({
      name,
      units,
      useBias: false,
      trainable: false,
      kernelInitializer: 'zeros',
    });
    return {
      layer: d,
      set: () => tf.tidy(() => d.setWeights([tf.tensor2d(kernel, [n, units])])),
    };
  };
  const p1 = tf.layers.permute({ name: `${INPUT_RESIZE_LAYER}.hcw`, dims: [1, 3, 2] });
  const wx = frozen(`${INPUT_RESIZE_LAYER}.width`, ow, bilinearMatrix(iw, ow), iw);
  const p2 = tf.layers.permute({ name: `${INPUT_RESIZE_LAYER}.cwh`, dims: [2, 3, 1] });
  const wy = frozen(`${INPUT_RESIZE_LAYER}.height`, oh, bilinearMatrix(ih, oh), ih);
  const p3 = tf.layers.permute({ name: INPUT_RESIZE_LAYER, dims: [3, 2, 1] });
  // [N, H, W, C] -> [N, H, C, W] -> [N, H, C, OW] -> [N, C, OW, H] -> [N, C, OW, OH] -> [N, OH, OW, C]
  let y = p1.apply(x) as tf.SymbolicTensor;
  y = wx.layer.apply(y) as tf.SymbolicTensor;
  y = p2.apply(y) as tf.SymbolicTensor;
  y = wy.layer.apply(y) as tf.SymbolicTensor;
  y = p3.apply(y) as tf.SymbolicTensor;
  wx.set();
  wy.set();
  return y;
}

interface Built {
  /** Core layer name -> [weight layer, BN layer or null]. */
  readonly layers: Map<string, { layer: Layer; main: tf.layers.Layer; bn: tf.layers.Layer | null }>;
}

function activation(name: string, act: Layer['act'], x: tf.SymbolicTensor): tf.SymbolicTensor {
  if (act === 'none') return x;
  return tf.layers
    .reLU({ name, ...(act === 'relu6' ? { maxValue: 6 } : {}) })
    .apply(x) as tf.SymbolicTensor;
}

/** Scratch initialisers: He normal (fan in) for kernels; PyTorch's default for the classifier. */
function kernelInit(layer: Layer, cin: number, seed: number | undefined, zero: boolean) {
  if (zero) return tf.initializers.zeros();
  switch (layer.kind) {
    case 'depthwise':
      // tfjs computes fan_in of a [k, k, c, 1] kernel as k*k*c; the true fan in is k*k.
      return tf.initializers.varianceScaling({
        scale: 2 * cin,
        mode: 'fanIn',
        distribution: 'normal',
        ...(seed === undefined ? {} : { seed }),
      });
    case 'fc':
      return tf.initializers.varianceScaling({
        scale: 1 / 3,
        mode: 'fanIn',
        distribution: 'uniform',
        ...(seed === undefined ? {} : { seed }),
      });
    default:
      return tf.initializers.varianceScaling({
        scale: 2,
        mode: 'fanIn',
        distribution: 'normal',
        ...(seed === undefined ? {} : { seed }),
      });
  }
}

/**
 * Materialises `encoding` of `net` as a tfjs `LayersModel` whose output is the logits
 * `[batch, numClasses]`. The model owns its variables: `model.dispose()` frees them.
 */
export function buildPlainModel(
  net: Network,
  encoding: Encoding,
  options: BuildPlainOptions = {},
): tf.LayersModel {
  const enc = validateEncoding(net, encoding);
  const spec = net.spec;
  const init = options.init ?? 'scratch';
  const given = init === 'scratch' ? null : init;
  const seed = options.seed ?? 0;
  const eps = options.bnEpsilon ?? 1e-5;
  const momentum = options.bnMomentum ?? 0.9;
  const expected = [spec.inputSize, spec.inputSize, spec.inputChannels] as const;
  const pre = options.inputPreprocess;
  const inputShape = pre ? [...pre.inputShape] : [...expected];

  const built: Built = { layers: new Map() };
  let layerIndex = 0;

  const weightLayer = (layer: Layer, x: tf.SymbolicTensor): tf.SymbolicTensor => {
    const cin = widthOf(layer.in, enc);
    const cout = widthOf(layer.out, enc);
    // Every layer gets its own deterministic seed stream.
    const s = given ? undefined : seed * 100_003 + ++layerIndex * 7919;
    const zero = given !== null;
    let main: tf.layers.Layer;
    if (layer.kind === 'fc') {
      main = tf.layers.dense({
        name: layer.name,
        units: cout,
        useBias: true,
        kernelInitializer: kernelInit(layer, cin, s, zero),
        biasInitializer: 'zeros',
      });
    } else if (layer.kind === 'depthwise') {
      main = tf.layers.depthwiseConv2d({
        name: layer.name,
        kernelSize: layer.kernel,
        strides: layer.stride,
        padding: 'same',
        depthMultiplier: 1,
        useBias: false,
        depthwiseInitializer: kernelInit(layer, cin, s, zero),
      });
    } else {
      main = tf.layers.conv2d({
        name: layer.name,
        filters: cout,
        kernelSize: layer.kernel,
        strides: layer.stride,
        padding: 'same',
        useBias: false,
        kernelInitializer: kernelInit(layer, cin, s, zero),
      });
    }
    const inChannels = x.shape[x.shape.length - 1];
    if (inChannels !== cin) {
      throw new PlainModelError(`${layer.name}: input has ${inChannels} channels, expected ${cin}`);
    }
    let y = main.apply(x) as tf.SymbolicTensor;
    let bn: tf.layers.Layer | null = null;
    if (layer.bn) {
      bn = tf.layers.batchNormalization({
        name: `${layer.name}.bn`,
        axis: -1,
        momentum,
        epsilon: eps,
        center: true,
        scale: true,
      });
      y = bn.apply(y) as tf.SymbolicTensor;
    }
    built.layers.set(layer.name, { layer, main, bn });
    return activation(`${layer.name}.act`, layer.act, y);
  };

  const blockGraph = (block: Block, input: tf.SymbolicTensor): tf.SymbolicTensor => {
    let x = input;
    if (block.poolBefore === 'global-avg') {
      x = tf.layers
        .globalAveragePooling2d({ name: `${block.name}.pool` })
        .apply(x) as tf.SymbolicTensor;
    }
    const blockIn = x;
    for (const layer of block.layers) x = weightLayer(layer, x);
    if (block.shortcut !== 'none') {
      const short = block.shortcut === 'identity' ? blockIn : weightLayer(block.shortcut, blockIn);
      x = tf.layers.add({ name: `${block.name}.add` }).apply([x, short]) as tf.SymbolicTensor;
      x = activation(`${block.name}.act`, block.actAfterAdd, x);
    }
    if (block.poolAfter === 'max3x3s2') {
      x = tf.layers
        .maxPooling2d({ name: `${block.name}.maxpool`, poolSize: 3, strides: 2, padding: 'same' })
        .apply(x) as tf.SymbolicTensor;
    }
    return x;
  };

  const input = tf.input({ shape: inputShape, name: INPUT_LAYER, dtype: 'float32' });
  let x = pre ? inputStage(input, pre, expected) : input;
  for (const block of net.blocks) x = blockGraph(block, x);
  const model = tf.model({
    inputs: input,
    outputs: x,
    name: options.name ?? `${spec.family}-${spec.preset}-plain`,
  });
  if (given) {
    try {
      loadGivenWeights(built, enc, given);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}

function toTensor(v: Values, shape: number[], what: string): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  if (v instanceof tf.Tensor) {
    if (v.size !== size)
      throw new PlainModelError(
        `${what}: ${v.size} values, expected ${size} [${shape.join(', ')}]`,
      );
    return v.reshape(shape);
  }
  if (v.length !== size)
    throw new PlainModelError(
      `${what}: ${v.length} values, expected ${size} [${shape.join(', ')}]`,
    );
  return tf.tensor(v, shape, 'float32');
}

function loadGivenWeights(built: Built, enc: Encoding, weights: PlainWeights): void {
  for (const [name, { layer, main, bn }] of built.layers) {
    const w = lookup(weights, name);
    if (!w) throw new PlainModelError(`no weights given for layer ${name}`);
    const cin = widthOf(layer.in, enc);
    const cout = widthOf(layer.out, enc);
    tf.tidy(() => {
      if (layer.kind === 'fc') {
        const bias = w.bias ?? new Float32Array(cout);
        main.setWeights([
          toTensor(w.weight, [cin, cout], `${name}.weight`),
          toTensor(bias, [cout], `${name}.bias`),
        ]);
      } else if (layer.kind === 'depthwise') {
        main.setWeights([
          toTensor(w.weight, [layer.kernel, layer.kernel, cin, 1], `${name}.weight`),
        ]);
      } else {
        main.setWeights([
          toTensor(w.weight, [layer.kernel, layer.kernel, cin, cout], `${name}.weight`),
        ]);
      }
      if (bn) {
        const c = cout;
        const ones = new Float32Array(c).fill(1);
        const zeros = new Float32Array(c);
        // BatchNormalization weights: gamma, beta, moving_mean, moving_variance.
        bn.setWeights([
          toTensor(w.gamma ?? ones, [c], `${name}.gamma`),
          toTensor(w.beta ?? zeros, [c], `${name}.beta`),
          toTensor(w.mean ?? zeros, [c], `${name}.mean`),
          toTensor(w.variance ?? ones, [c], `${name}.variance`),
        ]);
      }
    });
  }
}

export interface PlainParamCounts {
  /** Kernels, BN gamma/beta, classifier bias: equals core's `countCost(...).params`. */
  trainable: number;
  /** BN moving mean and variance (2 per BN channel). */
  bnMovingStats: number;
  /** The frozen input normalisation (1x1 conv kernel + bias). */
  preprocessing: number;
  /** Everything `model.countParams()` counts. */
  total: number;
}

/** Splits a plain model's parameters by role (see the module comment for the rule). */
export function plainParamCounts(model: tf.LayersModel): PlainParamCounts {
  const size = (ws: tf.LayerVariable[]) => {
    let n = 0;
    for (const w of ws) {
      let k = 1;
      for (const d of w.shape) k *= d ?? 1;
      n += k;
    }
    return n;
  };
  let trainable = 0;
  let bnMovingStats = 0;
  let preprocessing = 0;
  for (const layer of model.layers) {
    if (layer.name.startsWith(`${INPUT_LAYER}.`)) {
      preprocessing += size(layer.weights);
    } else {
      trainable += size(layer.trainableWeights);
      bnMovingStats += size(layer.nonTrainableWeights);
    }
  }
  return { trainable, bnMovingStats, preprocessing, total: model.countParams() };
}

/**
 * Keys per-layer weights given in `net.layers` order (as the PruningNet produces them:
 * cropped weight, classifier bias, recalibrated BN mean / variance) by layer name.
 */
export function plainWeightsByLayer(
  net: Network,
  perLayer: readonly (PlainLayerWeights | undefined)[],
): Map<string, PlainLayerWeights> {
  if (perLayer.length !== net.layers.length) {
    throw new PlainModelError(
      `expected weights for ${net.layers.length} layers, got ${perLayer.length}`,
    );
  }
  const out = new Map<string, PlainLayerWeights>();
  net.layers.forEach((l, i) => {
    const w = perLayer[i];
    if (w) out.set(l.name, w);
  });
  return out;
}
