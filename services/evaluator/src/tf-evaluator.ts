/**
 * The production CandidateEvaluator (DESIGN 1.5) on tfjs, from the cropped weights the
 * weight generator streams: reset BN statistics, recompute them by training-mode forward
 * passes over the recalibration batches (mean of the batch means and of the unbiased batch
 * variances, as PyTorch's BN with momentum=None), then top-1 and cross-entropy on the
 * validation images in inference mode with every BN folded into its conv.
 *
 * The forward follows @metaprune/engine's PruningNet forward (pruningnet/forward.ts) op for
 * op — 'same' padding, BN without affine (eps 1e-5) through the engine's batchNormTrain
 * kernel, relu6 as clipByValue, global average pool before the classifier — so a candidate
 * scores here what it scores in the engine. The engine does not export an evaluation over
 * streamed weights yet; when it does, this module should call it instead.
 *
 * Streamed tensors (GenerateWeights): `<layer>.weight` for every layer of `net.layers` in
 * tfjs layout (conv [k, k, cin, cout], depthwise [k, k, c, 1], classifier [cin, classes])
 * and `<classifier>.bias` [classes].
 */
import type { Activation, Encoding, Layer, Network } from '@metaprune/core';
import { widthOf } from '@metaprune/core';
import { batchNormTrain, initBackend, parseBackendName } from '@metaprune/engine';
import { evaluation, tensorToFloat32 } from '@metaprune/proto';
import { type Logger, SPAN_NAMES, withSpan } from '@metaprune/runtime';
import * as tf from '@tensorflow/tfjs';
import { EvaluationData, type ImageBatchSet } from './data.js';
import {
  type CandidateEvaluator,
  type EvaluationInput,
  type EvaluationScore,
  type GeneratedWeights,
  PermanentEvaluationError,
} from './types.js';

export const BN_EPS = 1e-5;

const yieldNow = () => new Promise<void>((r) => setImmediate(r));

function activate(x: tf.Tensor, act: Activation): tf.Tensor {
  if (act === 'relu6') return tf.clipByValue(x, 0, 6);
  if (act === 'relu') return tf.relu(x);
  return x;
}

function globalAvg(x: tf.Tensor): tf.Tensor2D {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (h === 1 && w === 1) return tf.reshape(x, [n, c]);
  return tf.reshape(tf.avgPool(x as tf.Tensor4D, [h, w], [h, w], 'valid'), [n, c]);
}

/** The expected tfjs shape of a layer's cropped weight under an encoding. */
export function cropShape(layer: Layer, enc: Encoding): number[] {
  const cin = widthOf(layer.in, enc);
  if (layer.kind === 'fc') return [cin, widthOf(layer.out, enc)];
  const k = layer.kernel;
  if (layer.kind === 'depthwise') return [k, k, cin, 1];
  return [k, k, cin, widthOf(layer.out, enc)];
}

interface LayerWeights {
  w: Float32Array;
  shape: number[];
  bias?: Float32Array;
}

/** Checks the streamed tensors against the network and returns them per layer. */
export function layerWeights(
  net: Network,
  enc: Encoding,
  weights: GeneratedWeights,
): LayerWeights[] {
  const bad = (msg: string) =>
    new PermanentEvaluationError(
      evaluation.FailureReason.WEIGHTS_UNAVAILABLE,
      `the generated weights do not fit the candidate: ${msg}`,
    );
  return net.layers.map((layer) => {
    const t = weights.tensors.get(`${layer.name}.weight`);
    if (!t) throw bad(`no tensor "${layer.name}.weight"`);
    const want = cropShape(layer, enc);
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
      throw bad(
        `"${layer.name}.weight" has shape [${t.shape.join(', ')}], expected [${want.join(', ')}]`,
      );
    }
    const out: LayerWeights = { w: tensorToFloat32(t), shape: want };
    if (layer.kind === 'fc') {
      const b = weights.tensors.get(`${layer.name}.bias`);
      const cout = want[1]!;
      if (b?.shape.length !== 1 || b.shape[0] !== cout) {
        throw bad(`no bias "${layer.name}.bias" of shape [${cout}]`);
      }
      out.bias = tensorToFloat32(b);
    }
    return out;
  });
}

interface BnStats {
  mean: (Float32Array | undefined)[];
  variance: (Float32Array | undefined)[];
}

/** BN statistics recomputed from scratch over the recalibration images. */
async function recalibrate(
  net: Network,
  index: Map<Layer, number>,
  ws: readonly tf.Tensor[],
  set: ImageBatchSet,
  batchSize: number,
  signal: AbortSignal,
  onProgress: (fraction: number) => void,
): Promise<BnStats> {
  const L = net.layers.length;
  const sumMean: (Float64Array | undefined)[] = new Array(L).fill(undefined);
  const sumVar: (Float64Array | undefined)[] = new Array(L).fill(undefined);
  const [h, w, c] = set.imageShape;
  const per = h * w * c;
  const batches = Math.ceil(set.count / batchSize);
  for (let k = 0; k < batches; k++) {
    await yieldNow();
    signal.throwIfAborted();
    const n = Math.min(batchSize, set.count - k * batchSize);
    tf.tidy(() => {
      const x = tf.tensor4d(set.images.subarray(k * batchSize * per, (k * batchSize + n) * per), [
        n,
        h,
        w,
        c,
      ]);
      const apply = (layer: Layer, inp: tf.Tensor): tf.Tensor => {
        const i = index.get(layer) as number;
        const wt = ws[i] as tf.Tensor4D;
        const s = layer.stride;
        const y =
          layer.kind === 'depthwise'
            ? tf.depthwiseConv2d(inp as tf.Tensor4D, wt, s, 'same')
            : tf.conv2d(inp as tf.Tensor4D, wt, s, 'same');
        const bn = batchNormTrain(y, BN_EPS);
        const md = bn.mean.dataSync();
        const vd = bn.variance.dataSync();
        const r = n * layer.outSize * layer.outSize;
        const unbias = r > 1 ? r / (r - 1) : 1;
        let sm = sumMean[i];
        let sv = sumVar[i];
        if (!sm || !sv) {
          sm = new Float64Array(md.length);
          sv = new Float64Array(md.length);
          sumMean[i] = sm;
          sumVar[i] = sv;
        }
        for (let q = 0; q < md.length; q++) {
          sm[q] = (sm[q] as number) + (md[q] as number);
          sv[q] = (sv[q] as number) + (vd[q] as number) * unbias;
        }
        return activate(bn.y, layer.act);
      };
      let hx: tf.Tensor = x;
      for (const block of net.blocks) {
        if (block.kind === 'classifier') break;
        const inp = block.poolBefore === 'global-avg' ? globalAvg(hx) : hx;
        let y = inp;
        for (const layer of block.layers) y = apply(layer, y);
        if (block.shortcut === 'identity') y = tf.add(y, inp);
        else if (typeof block.shortcut === 'object') y = tf.add(y, apply(block.shortcut, inp));
        if (block.shortcut !== 'none') y = activate(y, block.actAfterAdd);
        if (block.poolAfter === 'max3x3s2') y = tf.maxPool(y as tf.Tensor4D, 3, 2, 'same');
        hx = y;
      }
    });
    onProgress((k + 1) / batches);
  }
  return {
    mean: sumMean.map((s) => (s ? Float32Array.from(s, (v) => v / batches) : undefined)),
    variance: sumVar.map((s) => (s ? Float32Array.from(s, (v) => v / batches) : undefined)),
  };
}

/** Weights with BN folded in: W' = W / sqrt(var + eps) per output channel, b = -mean * that. */
function folded(
  net: Network,
  lw: readonly LayerWeights[],
  stats: BnStats,
): { ws: tf.Tensor[]; biases: (tf.Tensor1D | undefined)[] } {
  const ws: tf.Tensor[] = [];
  const biases: (tf.Tensor1D | undefined)[] = [];
  net.layers.forEach((layer, i) => {
    const l = lw[i]!;
    if (layer.kind === 'fc') {
      ws.push(tf.tensor(l.w, l.shape));
      biases.push(tf.tensor1d(l.bias!));
      return;
    }
    const mean = stats.mean[i];
    const variance = stats.variance[i];
    if (!mean || !variance) throw new Error(`no BN statistics for layer ${layer.name}`);
    const C = mean.length;
    const rstd = new Float32Array(C);
    const bias = new Float32Array(C);
    for (let q = 0; q < C; q++) {
      rstd[q] = 1 / Math.sqrt((variance[q] as number) + BN_EPS);
      bias[q] = -(mean[q] as number) * (rstd[q] as number);
    }
    // the output channel is the innermost index in both filter layouts
    const wf = new Float32Array(l.w.length);
    for (let k = 0; k < wf.length; k++) wf[k] = (l.w[k] as number) * (rstd[k % C] as number);
    ws.push(tf.tensor(wf, l.shape));
    biases.push(tf.tensor1d(bias));
  });
  return { ws, biases };
}

/** Top-1 and mean cross-entropy of the folded candidate on a set. */
async function validate(
  net: Network,
  index: Map<Layer, number>,
  ws: readonly tf.Tensor[],
  biases: readonly (tf.Tensor1D | undefined)[],
  set: ImageBatchSet,
  batchSize: number,
  signal: AbortSignal,
  onProgress: (fraction: number) => void,
): Promise<{ correct: number; loss: number; images: number }> {
  const [h, w, c] = set.imageShape;
  const per = h * w * c;
  const batches = Math.ceil(set.count / batchSize);
  let correct = 0;
  let lossSum = 0;
  for (let k = 0; k < batches; k++) {
    await yieldNow();
    signal.throwIfAborted();
    const n = Math.min(batchSize, set.count - k * batchSize);
    const labels = set.labels.subarray(k * batchSize, k * batchSize + n);
    const [pred, loss] = tf.tidy(() => {
      const x = tf.tensor4d(set.images.subarray(k * batchSize * per, (k * batchSize + n) * per), [
        n,
        h,
        w,
        c,
      ]);
      const apply = (layer: Layer, inp: tf.Tensor, act: Activation): tf.Tensor => {
        const i = index.get(layer) as number;
        const wt = ws[i] as tf.Tensor;
        const bias = biases[i];
        if (layer.kind === 'fc') {
          return tf.fused.matMul({
            a: inp as tf.Tensor2D,
            b: wt as tf.Tensor2D,
            ...(bias ? { bias } : {}),
          });
        }
        const args = {
          x: inp as tf.Tensor4D,
          filter: wt as tf.Tensor4D,
          strides: layer.stride,
          pad: 'same' as const,
          ...(bias ? { bias } : {}),
          activation: act === 'none' ? ('linear' as const) : act,
        };
        return layer.kind === 'depthwise' ? tf.fused.depthwiseConv2d(args) : tf.fused.conv2d(args);
      };
      let hx: tf.Tensor = x;
      for (const block of net.blocks) {
        const inp = block.poolBefore === 'global-avg' ? globalAvg(hx) : hx;
        let y = inp;
        for (const layer of block.layers) y = apply(layer, y, layer.act);
        if (block.shortcut === 'identity') y = tf.add(y, inp);
        else if (typeof block.shortcut === 'object') {
          y = tf.add(y, apply(block.shortcut, inp, block.shortcut.act));
        }
        if (block.shortcut !== 'none') y = activate(y, block.actAfterAdd);
        if (block.poolAfter === 'max3x3s2') y = tf.maxPool(y as tf.Tensor4D, 3, 2, 'same');
        hx = y;
      }
      const logits = hx as tf.Tensor2D;
      const classes = logits.shape[1];
      const ce = tf.sum(
        tf.mul(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), tf.neg(tf.logSoftmax(logits))),
      );
      return [tf.argMax(logits, 1).dataSync(), ce.dataSync()[0] as number] as const;
    });
    for (let q = 0; q < n; q++) if (pred[q] === labels[q]) correct++;
    lossSum += loss;
    onProgress((k + 1) / batches);
  }
  return { correct, loss: set.count > 0 ? lossSum / set.count : 0, images: set.count };
}

/** Scores one candidate from its streamed weights on prepared image sets. */
export async function scoreCandidate(
  input: Pick<EvaluationInput, 'network' | 'encoding' | 'weights' | 'signal' | 'onPhase'> & {
    batchSize: number;
  },
  sets: { recal: ImageBatchSet; val: ImageBatchSet },
): Promise<EvaluationScore> {
  const { network: net, encoding: enc } = input;
  const lw = layerWeights(net, enc, input.weights);
  const index = new Map(net.layers.map((l, i) => [l, i] as const));
  const t0 = performance.now();
  input.onPhase(evaluation.EvaluationPhase.RECALIBRATION, 0);
  const raw = lw.map((l) => tf.tensor(l.w, l.shape));
  let stats: BnStats;
  try {
    stats = await withSpan(
      SPAN_NAMES.bnRecalibration,
      () =>
        recalibrate(net, index, raw, sets.recal, input.batchSize, input.signal, (f) =>
          input.onPhase(evaluation.EvaluationPhase.RECALIBRATION, f),
        ),
      { 'metaprune.evaluation.images': sets.recal.count },
    );
  } finally {
    tf.dispose(raw);
  }
  const t1 = performance.now();
  input.onPhase(evaluation.EvaluationPhase.VALIDATION, 0);
  const { ws, biases } = folded(net, lw, stats);
  try {
    const v = await withSpan(
      SPAN_NAMES.validation,
      () =>
        validate(net, index, ws, biases, sets.val, input.batchSize, input.signal, (f) =>
          input.onPhase(evaluation.EvaluationPhase.VALIDATION, f),
        ),
      { 'metaprune.evaluation.images': sets.val.count },
    );
    return {
      top1: v.images > 0 ? v.correct / v.images : 0,
      loss: v.loss,
      images: v.images,
      recalibrationMs: t1 - t0,
      validationMs: performance.now() - t1,
    };
  } finally {
    tf.dispose(ws);
    tf.dispose(biases.filter((b): b is tf.Tensor1D => b !== undefined));
  }
}

export interface TfEvaluatorOptions {
  /** auto, tensorflow-gpu, tensorflow, wasm or cpu. */
  backend: string;
  /** Root of the datasets (fashion-mnist, cifar10, dir:<path>). */
  dataRoot: string;
  logger?: Logger;
}

export interface TfEvaluator extends CandidateEvaluator {
  /** The tfjs backend that runs (e.g. "wasm"). */
  readonly backend: string;
}

/** Initialises the tfjs backend (the engine's choice order) and returns the evaluator. */
export async function createTfEvaluator(o: TfEvaluatorOptions): Promise<TfEvaluator> {
  const prefer = o.backend === 'auto' ? undefined : parseBackendName(o.backend);
  const info = await initBackend(prefer ? { prefer } : {});
  o.logger?.info('tfjs backend ready', {
    backend: info.name,
    simd: info.simd,
    threads: info.threads,
  });
  const data = new EvaluationData(o.dataRoot);
  return {
    backend: info.name,
    async evaluate(input: EvaluationInput): Promise<EvaluationScore> {
      const sets = await data.imageSets(input.network.spec, input.data, input.settings);
      input.signal.throwIfAborted();
      return scoreCandidate({ ...input, batchSize: input.settings.batchSize }, sets);
    },
  };
}
