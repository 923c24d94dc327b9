/**
 * The production CandidateEvaluator (DESIGN 1.5) on tfjs, from the cropped weights the
 * weight generator streams: reset BN statistics, recompute them by training-mode forward
 * passes over the recalibration batches (mean of the batch means and of the unbiased batch
 * variances, as PyTorch's BN with momentum=None), then top-1 and cross-entropy on the
 * validation images in inference mode with every BN folded into its conv.
 *
 * The maths is the engine's (BnStatsAccumulator, foldBatchNorm, forwardFolded: the same
 * code its in-process evaluation runs), so a candidate scores here what it scores in the
 * engine; this module adds the service's parts: checking the streamed tensors, batches
 * over the prepared sets, cancellation, progress and spans.
 *
 * Streamed tensors (GenerateWeights): `<layer>.weight` for every layer of `net.layers` in
 * tfjs layout (conv [k, k, cin, cout], depthwise [k, k, c, 1], classifier [cin, classes])
 * and `<classifier>.bias` [classes].
 */
import type { Encoding, Layer, Network } from '@metaprune/core';
import { widthOf } from '@metaprune/core';
import {
  type BnStats,
  BnStatsAccumulator,
  foldBatchNorm,
  forwardFolded,
  initBackend,
  layerIndex,
  parseBackendName,
} from '@metaprune/engine';
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

const yieldNow = () => new Promise<void>((r) => setImmediate(r));

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

/** Batch k of a prepared set as a tensor (the last batch may be short). */
function batchTensor(set: ImageBatchSet, k: number, batchSize: number): tf.Tensor4D {
  const [h, w, c] = set.imageShape;
  const per = h * w * c;
  const n = Math.min(batchSize, set.count - k * batchSize);
  return tf.tensor4d(set.images.subarray(k * batchSize * per, (k * batchSize + n) * per), [
    n,
    h,
    w,
    c,
  ]);
}

/** BN statistics recomputed from scratch over the recalibration images. */
async function recalibrate(
  net: Network,
  index: Map<Layer, number>,
  lw: readonly LayerWeights[],
  set: ImageBatchSet,
  batchSize: number,
  signal: AbortSignal,
  onProgress: (fraction: number) => void,
): Promise<BnStats> {
  const acc = new BnStatsAccumulator(net, index);
  const ws = lw.map((l) => tf.tensor(l.w, l.shape));
  const biases = lw.map((l) => (l.bias ? tf.tensor1d(l.bias) : undefined));
  try {
    const batches = Math.ceil(set.count / batchSize);
    for (let k = 0; k < batches; k++) {
      await yieldNow();
      signal.throwIfAborted();
      const x = batchTensor(set, k, batchSize);
      try {
        acc.addBatch(x, ws, biases);
      } finally {
        x.dispose();
      }
      onProgress((k + 1) / batches);
    }
  } finally {
    tf.dispose(ws);
    tf.dispose(biases.filter((b): b is tf.Tensor1D => b !== undefined));
  }
  return acc.result();
}

/** Weights with BN folded in (the classifier keeps its own bias). */
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
      biases.push(l.bias ? tf.tensor1d(l.bias) : undefined);
      return;
    }
    const mean = stats.mean[i];
    const variance = stats.variance[i];
    if (!mean || !variance) throw new Error(`no BN statistics for layer ${layer.name}`);
    const f = foldBatchNorm(l.w, mean, variance);
    ws.push(tf.tensor(f.w, l.shape));
    biases.push(tf.tensor1d(f.bias));
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
  const batches = Math.ceil(set.count / batchSize);
  let correct = 0;
  let lossSum = 0;
  for (let k = 0; k < batches; k++) {
    await yieldNow();
    signal.throwIfAborted();
    const n = Math.min(batchSize, set.count - k * batchSize);
    const labels = set.labels.subarray(k * batchSize, k * batchSize + n);
    const [pred, loss] = tf.tidy(() => {
      const logits = forwardFolded(net, index, batchTensor(set, k, batchSize), ws, biases);
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
  const index = layerIndex(net);
  const t0 = performance.now();
  input.onPhase(evaluation.EvaluationPhase.RECALIBRATION, 0);
  const stats = await withSpan(
    SPAN_NAMES.bnRecalibration,
    () =>
      recalibrate(net, index, lw, sets.recal, input.batchSize, input.signal, (f) =>
        input.onPhase(evaluation.EvaluationPhase.RECALIBRATION, f),
      ),
    { 'metaprune.evaluation.images': sets.recal.count },
  );
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
